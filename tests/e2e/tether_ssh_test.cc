// End-to-end: `tether ssh` takes what stock tools send it (scp -S, sftp -S: their own
// option lists, a subsystem) and refuses, with a reason and ssh's exit status, the options
// it cannot honour.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;
using TetherSshTest = TetherTest;

TEST_F(TetherSshTest, ScpThroughTetherSshCopiesTheFile) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  // scp -S takes a program, not a command line.
  const std::string wrapper = scratch_.File("tether-ssh");
  ASSERT_TRUE(WriteFile(wrapper,
                        "#!/bin/sh\nexec " + std::string(TetherBinary()) + " -F " +
                            sshd_.config_path() + " ssh \"$@\"\n",
                        0700)
                  .ok());
  const std::string src = scratch_.File("payload.bin");
  ASSERT_TRUE(WriteFile(src, PatternBytes(5, 1u << 20)).ok());
  const std::string dst = scratch_.File("copied.bin");
  // OpenSSH 9's scp: -x, -oPermitLocalCommand=no, -oClearAllForwardings=yes,
  // -oRemoteCommand=none, -oRequestTTY=no, -oControlMaster=no, -oForwardAgent=no, -s sftp.
  CommandResult r = RunCommand({"scp", "-q", "-S", wrapper, src, "testhost:" + dst},
                               {{"TETHER_STATE_DIR", state_.path()}}, seconds(60));
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(Sha256Hex(ReadFile(dst).value()), Sha256Hex(ReadFile(src).value()));
}

TEST_F(TetherSshTest, RefusesAJumpHostWithAReasonAndExit255) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  CommandResult r = Tether({"ssh", "-J", "login", "testhost", "echo", "ran"});
  EXPECT_EQ(r.exit_code, 255) << r.Describe();
  EXPECT_EQ(r.out, "") << "the command must not run";
  EXPECT_NE(r.err.find("-J login is not honoured"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ProxyJump login"), std::string::npos) << r.err;

  CommandResult ok = Tether({"ssh", "-o", "BatchMode=yes", "testhost", "echo", "ran"});
  EXPECT_TRUE(ok.ok()) << ok.Describe();
  EXPECT_EQ(ok.out, "ran\n");
}

// scp and rsync send user@host when the user typed it: the daemon is the host's, not a
// second one named "user@host" with a login of its own.
TEST_F(TetherSshTest, UserAtHostRidesTheHostsDaemon) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  const size_t logins = CountOccurrences(ReadFileOrEmpty(sshd_.log_path()), "Accepted publickey");
  CommandResult r = Tether({"ssh", sshd_.user() + "@testhost", "echo", "ran"});
  EXPECT_EQ(r.out, "ran\n") << r.Describe();
  r = Tether({"ssh", "ssh://" + sshd_.user() + "@testhost", "echo", "ran"});
  EXPECT_EQ(r.out, "ran\n") << r.Describe();
  EXPECT_EQ(CountOccurrences(ReadFileOrEmpty(sshd_.log_path()), "Accepted publickey"), logins)
      << sshd_.LogTail();
  for (const std::string& file : StateFiles()) {
    EXPECT_EQ(file.rfind("testhost.", 0), 0u) << "another daemon's file: " << file;
  }
}

}  // namespace
}  // namespace tether::testing
