// End-to-end against an older server: the Debian 11 root of scripts/debian11.sh, whose
// OpenSSH 8.4 sshd runs chrooted, so that what tether starts over ssh runs on glibc 2.31
// and bash 5.1. Run with TETHER_TEST_SSHD=$(scripts/debian11.sh) (CI's interop stage
// does); skipped otherwise.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

class InteropTest : public TetherTest {
 protected:
  void SetUp() override {
    if (SshdRoot().empty()) {
      GTEST_SKIP() << "the bed's sshd (" << SshdBinary()
                   << ") is not the Debian 11 root's: run with "
                      "TETHER_TEST_SSHD=$(scripts/debian11.sh)";
    }
    TetherTest::SetUp();
  }
  void TearDown() override {
    // The agent runs on the "server" (in the root, as a process of this machine): end it by
    // PID.
    auto pid = ReadFile(AgentDir() + "/agent.pid");
    if (pid.ok() && std::atoi(pid->c_str()) > 1) TerminatePid(std::atoi(pid->c_str()));
    TetherTest::TearDown();
  }
  // Under /tmp: the same path in the root and here.
  std::string AgentDir() { return scratch_.File("server-home"); }
  CommandResult T(std::vector<std::string> args) {
    args.insert(args.begin(), {"-F", sshd_.config_path()});
    return RunTether(state_.path(), args, seconds(90),
                     {{"TETHER_CONFIG", scratch_.File("laptop/config.toml")}});
  }
};

// The matrix is only worth something if commands really run on the old userland.
TEST_F(InteropTest, CommandsRunOnTheRootsUserland) {
  ASSERT_TRUE(T({"up", "testhost"}).ok());
  CommandResult r = T({"exec", "testhost", "cat /etc/debian_version; ldd --version | head -1"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out.rfind("11.", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(" 2.31"), std::string::npos) << "not glibc 2.31: " << r.out;
}

// The agent is one static binary: it must run on a server older than the machine it was
// built on, here glibc 2.31 without libssl.so.3.
TEST_F(InteropTest, AgentInstallsAndReportsOnDebian11) {
  CommandResult install = T({"agent", "install", "testhost", "--dir", AgentDir()});
  ASSERT_TRUE(install.ok()) << install.Describe();
  EXPECT_NE(install.out.find("installed"), std::string::npos) << install.out;

  ASSERT_TRUE(T({"up", "testhost", "--agent"}).ok());
  CommandResult status = T({"status", "--remote"});
  ASSERT_TRUE(status.ok()) << status.Describe();
  EXPECT_NE(status.out.find("testhost: load"), std::string::npos) << status.Describe();
}

}  // namespace
}  // namespace tether::testing
