// End-to-end: `tether ssh-config --install` on the guide's ~/.ssh/config (a `Host *` with
// ControlMaster auto and a ControlPath of its own, first in the file): plain ssh, scp, rsync,
// git and `ssh -O check` then ride tether's connection with no new login, `ssh -G` shows
// why, and `--uninstall` leaves the file as it was, byte for byte.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

class SshIncludeTest : public TetherTest {
 protected:
  void SetUp() override {
    TetherTest::SetUp();
    if (HasFatalFailure()) return;
    sockets_ = scratch_.File("sockets");
    ASSERT_EQ(::mkdir(sockets_.c_str(), 0700), 0);
    // The guide's block first, as users have it; then the test bed's Host testhost block.
    guide_ =
        "Host *\n"
        "    ControlMaster auto\n"
        "    ControlPath " +
        sockets_ +
        "/%r@%h-%p\n"
        "    ControlPersist yes\n"
        "    ServerAliveInterval 60\n"
        "    ServerAliveCountMax 3\n\n";
    std::string block = scratch_.File("testhost.conf");
    ASSERT_TRUE(sshd_.WriteClientConfig(block).ok());
    config_ = scratch_.File("config");
    ASSERT_TRUE(WriteFile(config_, guide_ + ReadFileOrEmpty(block), 0644).ok());
    original_ = ReadFileOrEmpty(config_);
  }
  CommandResult TetherF(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"-F", config_};
    all.insert(all.end(), args.begin(), args.end());
    return RunTether(state_.path(), all);
  }
  // Plain ssh with the user's config, nothing else on its command line.
  CommandResult PlainSsh(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ssh", "-F", config_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, {}, seconds(30));
  }
  std::string SshG() { return PlainSsh({"-G", "testhost"}).out; }
  size_t Logins() {
    return CountOccurrences(ReadFileOrEmpty(sshd_.log_path()), "Accepted publickey");
  }

  std::string sockets_, guide_, config_, original_;
};

TEST_F(SshIncludeTest, TheGuidesConfigRidesTetherOnceInstalledAndIsGivenBackByteForByte) {
  ASSERT_TRUE(TetherF({"up", "testhost"}).ok());
  // Before: the guide's ControlPath wins, and plain ssh would make a master of its own.
  EXPECT_NE(SshG().find("controlpath " + sockets_ + "/"), std::string::npos) << SshG();

  CommandResult install = TetherF({"ssh-config", "--install"});
  ASSERT_TRUE(install.ok()) << install.Describe();
  const std::string blocks = state_.File("ssh_config");
  std::string installed = ReadFileOrEmpty(config_);
  EXPECT_EQ(installed.rfind("# tether", 0), 0u) << installed;
  EXPECT_EQ(installed.substr(installed.find('\n') + 1), "Include " + blocks + "\n" + original_);
  EXPECT_EQ(ReadFileOrEmpty(config_ + ".tether-backup"), original_);
  struct stat st {};
  ASSERT_EQ(::stat(config_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u) << "the file's mode changed";
  // Installed twice: nothing changes.
  CommandResult again = TetherF({"ssh-config", "--install"});
  EXPECT_TRUE(again.ok()) << again.Describe();
  EXPECT_NE(again.out.find("nothing to do"), std::string::npos) << again.out;
  EXPECT_EQ(ReadFileOrEmpty(config_), installed);

  // ssh -G: tether's ControlPath now, ControlMaster no.
  std::string g = SshG();
  EXPECT_NE(g.find("controlpath " + state_.File("testhost.mux") + "\n"), std::string::npos) << g;
  EXPECT_NE(g.find("controlmaster false\n"), std::string::npos) << g;

  // Plain ssh, ssh -O check, scp, rsync and git: no login of their own.
  const size_t logins = Logins();
  CommandResult r = PlainSsh({"testhost", "echo", "plain ssh"});
  EXPECT_EQ(r.out, "plain ssh\n") << r.Describe();
  r = PlainSsh({"-O", "check", "testhost"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  std::string src = scratch_.File("payload.bin");
  ASSERT_TRUE(WriteFile(src, PatternBytes(7, 300000)).ok());
  r = RunCommand({"scp", "-q", "-F", config_, src, "testhost:" + scratch_.File("by-scp.bin")}, {},
                 seconds(60));
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(ReadFileOrEmpty(scratch_.File("by-scp.bin")), ReadFileOrEmpty(src));
  r = RunCommand(
      {"rsync", "-e", "ssh -F " + config_, src, "testhost:" + scratch_.File("by-rsync.bin")}, {},
      seconds(60));
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(ReadFileOrEmpty(scratch_.File("by-rsync.bin")), ReadFileOrEmpty(src));
  std::string repo = scratch_.File("repo.git");
  ASSERT_TRUE(RunCommand({"git", "init", "-q", "--bare", repo}).ok());
  r = RunCommand({"git", "ls-remote", "testhost:" + repo},
                 {{"GIT_SSH_COMMAND", "ssh -F " + config_}}, seconds(60));
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(Logins(), logins) << "a client logged in on its own:\n" << sshd_.LogTail();
  // And no master of ssh's own was made at the guide's ControlPath: the one socket there
  // is the daemon's own (it serves the guide's path too since `up`, control_path_test.cc).
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(sockets_)) {
    ++entries;
    EXPECT_EQ(e.path().string(),
              sockets_ + "/" + sshd_.user() + "@127.0.0.1-" + std::to_string(sshd_.port()));
  }
  EXPECT_LE(entries, 1u) << "something was left in " << sockets_;

  // Down: the host's block goes, and the guide's settings apply again.
  ASSERT_TRUE(TetherF({"down", "testhost"}).ok());
  EXPECT_TRUE(std::filesystem::is_empty(sockets_)) << "down left the daemon's socket";
  EXPECT_EQ(ReadFileOrEmpty(blocks).find("Host testhost"), std::string::npos)
      << ReadFileOrEmpty(blocks);
  EXPECT_NE(SshG().find("controlpath " + sockets_ + "/"), std::string::npos) << SshG();

  CommandResult uninstall = TetherF({"ssh-config", "--uninstall"});
  ASSERT_TRUE(uninstall.ok()) << uninstall.Describe();
  EXPECT_EQ(ReadFileOrEmpty(config_), original_) << "not given back byte for byte";
  EXPECT_NE(::access(blocks.c_str(), F_OK), 0) << "the host blocks file stayed";
  uninstall = TetherF({"ssh-config", "--uninstall"});
  EXPECT_TRUE(uninstall.ok()) << uninstall.Describe();
  EXPECT_NE(uninstall.out.find("nothing to do"), std::string::npos) << uninstall.out;
}

TEST_F(SshIncludeTest, ASymlinkedConfigStaysALinkAndItsTargetChanges) {
  // Dotfiles kept in a repository and linked into ~/.ssh.
  std::string target = scratch_.File("dotfiles-config");
  ASSERT_EQ(::rename(config_.c_str(), target.c_str()), 0);
  ASSERT_EQ(::symlink(target.c_str(), config_.c_str()), 0);
  CommandResult install = TetherF({"ssh-config", "--install"});
  ASSERT_TRUE(install.ok()) << install.Describe();
  struct stat st {};
  ASSERT_EQ(::lstat(config_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << "the link was replaced by a file";
  EXPECT_NE(ReadFileOrEmpty(target).find("Include "), std::string::npos);
  ASSERT_TRUE(TetherF({"ssh-config", "--uninstall"}).ok());
  EXPECT_EQ(ReadFileOrEmpty(target), original_);
}

}  // namespace
}  // namespace tether::testing
