// End-to-end: with the guide's `Host *` block (ControlMaster auto, ControlPath ...) in the
// user's ssh_config and no edit at all, `tether up` serves the mux protocol at that
// ControlPath, so plain ssh, scp, rsync, git and `ssh -O check` ride tether's connection
// with no login of their own; a live OpenSSH master there is left alone and reported; a
// stale socket is replaced; `down` removes only our socket. The path's directory is in
// the scratch directory, not ~/.ssh/sockets: `~` is the password database's home (root's
// real one here), which a test must not write into; the expansion of `~` is a unit test.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "e2e/tether_fixture.h"
#include "net/socket.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

class ControlPathTest : public TetherTest {
 protected:
  void SetUp() override {
    TetherTest::SetUp();
    if (HasFatalFailure()) return;
    sockets_ = scratch_.File("sockets");
    ASSERT_EQ(::mkdir(sockets_.c_str(), 0700), 0);
    WriteConfig(sockets_ + "/%r@%h-%p");
  }
  // The guide's block first, as users have it, then the test bed's Host testhost block.
  void WriteConfig(const std::string& control_path) {
    std::string block = scratch_.File("testhost.conf");
    ASSERT_TRUE(sshd_.WriteClientConfig(block).ok());
    config_ = scratch_.File("config");
    ASSERT_TRUE(WriteFile(config_,
                          "Host *\n"
                          "    ControlMaster auto\n"
                          "    ControlPath " +
                              control_path +
                              "\n"
                              "    ControlPersist yes\n"
                              "    ServerAliveInterval 60\n"
                              "    ServerAliveCountMax 3\n\n" +
                              ReadFileOrEmpty(block),
                          0644)
                    .ok());
  }
  CommandResult TetherF(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"-F", config_};
    all.insert(all.end(), args.begin(), args.end());
    return RunTether(state_.path(), all);
  }
  CommandResult PlainSsh(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ssh", "-F", config_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, {}, seconds(30));
  }
  // The ControlPath the real ssh computes for testhost (`ssh -G` prints it expanded).
  std::string SshsControlPath() {
    const std::string g = PlainSsh({"-G", "testhost"}).out;
    const size_t at = g.find("\ncontrolpath ");
    if (at == std::string::npos) return "";
    const size_t start = at + 13;
    return g.substr(start, g.find('\n', start) - start);
  }
  nlohmann::json ControlPathStatus() {
    auto j = nlohmann::json::parse(TetherF({"status", "testhost", "--json"}).out, nullptr, false);
    if (j.is_discarded() || j["hosts"].empty()) return nullptr;
    return j["hosts"][0].value("control_path", nlohmann::json());
  }
  size_t Logins() {
    return CountOccurrences(ReadFileOrEmpty(sshd_.log_path()), "Accepted publickey");
  }

  std::string sockets_, config_;
};

TEST_F(ControlPathTest, TheGuidesBlockRidesTetherWithNoEdit) {
  const std::string path = SshsControlPath();
  ASSERT_EQ(path, sockets_ + "/" + sshd_.user() + "@127.0.0.1-" + std::to_string(sshd_.port()));
  const std::string before = ReadFileOrEmpty(config_);
  ASSERT_TRUE(TetherF({"up", "testhost"}).ok());
  nlohmann::json cp = ControlPathStatus();
  ASSERT_TRUE(cp.is_object()) << cp;
  EXPECT_EQ(cp.value("path", ""), path);
  EXPECT_EQ(cp.value("state", ""), "serving") << cp;
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  CommandResult text = TetherF({"status"});
  EXPECT_NE(text.out.find("ssh's ControlPath " + path + " rides this connection"),
            std::string::npos)
      << text.out;

  const size_t logins = Logins();
  CommandResult r = PlainSsh({"testhost", "echo", "plain ssh"});
  EXPECT_EQ(r.out, "plain ssh\n") << r.Describe();
  r = PlainSsh({"-O", "check", "testhost"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  const std::string daemon_pid = std::to_string(
      nlohmann::json::parse(TetherF({"status", "--json"}).out)["hosts"][0].value("pid", 0));
  EXPECT_NE(r.err.find("pid=" + daemon_pid), std::string::npos) << r.Describe();
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
  const std::string repo = scratch_.File("repo.git");
  ASSERT_TRUE(RunCommand({"git", "init", "-q", "--bare", repo}).ok());
  r = RunCommand({"git", "clone", "-q", "testhost:" + repo, scratch_.File("clone")},
                 {{"GIT_SSH_COMMAND", "ssh -F " + config_}}, seconds(60));
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(::access(scratch_.File("clone/.git").c_str(), F_OK), 0);
  // ssh -O forward and cancel at the guide's path change tether's own forwards.
  HttpServer http("forwarded by ssh -O\n");
  const uint16_t local = FreeTcpPort();
  const std::string spec = std::to_string(local) + ":127.0.0.1:" + std::to_string(http.port());
  r = PlainSsh({"-O", "forward", "-L", spec, "testhost"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto got = HttpGet(local);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->body, "forwarded by ssh -O\n");
  EXPECT_NE(TetherF({"status"}).out.find(std::to_string(local)), std::string::npos);
  r = PlainSsh({"-O", "cancel", "-L", spec, "testhost"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_FALSE(PortAccepts(local));
  EXPECT_EQ(Logins(), logins) << "a client logged in on its own:\n" << sshd_.LogTail();
  EXPECT_EQ(ReadFileOrEmpty(config_), before) << "the user's file was edited";

  ASSERT_TRUE(TetherF({"down", "testhost"}).ok());
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "our socket stayed after down";
}

// `ssh -O exit`, the guide's way to end a master, ends tether's daemon for the host and
// takes its socket away from the guide's path.
TEST_F(ControlPathTest, SshDashOExitAtTheGuidesPathStopsTetherAndFreesThePath) {
  const std::string path = SshsControlPath();
  ASSERT_TRUE(TetherF({"up", "testhost"}).ok());
  const int pid =
      nlohmann::json::parse(TetherF({"status", "--json"}).out)["hosts"][0].value("pid", 0);
  ASSERT_GT(pid, 0);
  CommandResult r = PlainSsh({"-O", "exit", "testhost"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(WaitFor([&] { return ::kill(pid, 0) != 0; }, seconds(10)));
  struct stat st {};
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "the daemon's socket stayed after -O exit";
  r = PlainSsh({"-O", "check", "testhost"});
  EXPECT_FALSE(r.ok()) << r.Describe();
}

// Two hosts whose ControlPath names one file (the same user, address and port under two
// aliases): the first daemon serves it, the second leaves it alone and says it is tether's.
TEST_F(ControlPathTest, AnotherTetherDaemonAtThePathIsNamedAsOurs) {
  const std::string block = ReadFileOrEmpty(config_);
  const size_t at = block.find("Host testhost");
  ASSERT_NE(at, std::string::npos) << block;
  std::string twin = block.substr(at);
  twin.replace(0, std::string("Host testhost").size(), "Host testtwin");
  ASSERT_TRUE(WriteFile(config_, block + "\n" + twin, 0644).ok());
  ASSERT_TRUE(TetherF({"up", "testhost"}).ok());
  const int first =
      nlohmann::json::parse(TetherF({"status", "testhost", "--json"}).out)["hosts"][0].value(
          "pid", 0);
  ASSERT_TRUE(TetherF({"up", "testtwin"}).ok());
  auto j = nlohmann::json::parse(TetherF({"status", "testtwin", "--json"}).out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  nlohmann::json cp = j["hosts"][0].value("control_path", nlohmann::json());
  ASSERT_TRUE(cp.is_object()) << j;
  EXPECT_EQ(cp.value("state", ""), "held") << cp;
  EXPECT_EQ(cp.value("pid", 0), first) << cp;
  EXPECT_NE(cp.dump().find("another tether daemon, pid " + std::to_string(first)),
            std::string::npos)
      << cp;
  EXPECT_EQ(cp.dump().find("OpenSSH"), std::string::npos) << cp;
  ASSERT_TRUE(TetherF({"down", "testtwin"}).ok());
  ASSERT_TRUE(TetherF({"down", "testhost"}).ok());
}

TEST_F(ControlPathTest, EveryTokenExpandsAsTheRealSshDoes) {
  // Two paths: all of them in one would be too long for a socket.
  for (const std::string tokens : {"/%C.%p%r%i%%", "/%h.%n.%k.%u.%L.x"}) {
    WriteConfig(sockets_ + tokens);
    const std::string path = SshsControlPath();
    ASSERT_FALSE(path.empty());
    ASSERT_TRUE(TetherF({"up", "testhost"}).ok());
    nlohmann::json cp = ControlPathStatus();
    ASSERT_TRUE(cp.is_object()) << cp;
    EXPECT_EQ(cp.value("path", ""), path) << tokens;
    EXPECT_EQ(cp.value("state", ""), "serving") << cp;
    // And ssh finds it there: no login of its own.
    const size_t logins = Logins();
    EXPECT_EQ(PlainSsh({"testhost", "echo", "ok"}).out, "ok\n");
    EXPECT_EQ(Logins(), logins) << sshd_.LogTail();
    ASSERT_TRUE(TetherF({"down", "testhost"}).ok());
  }
}

TEST_F(ControlPathTest, ALiveOpenSshMasterIsLeftAloneAndReported) {
  const std::string path = SshsControlPath();
  // ssh's own master, backgrounded by -f once it has logged in.
  CommandResult master = PlainSsh({"-M", "-N", "-f", "testhost"});
  ASSERT_TRUE(master.ok()) << master.Describe();
  CommandResult check = PlainSsh({"-O", "check", "testhost"});
  ASSERT_TRUE(check.ok()) << check.Describe();
  const size_t at = check.err.find("pid=");
  ASSERT_NE(at, std::string::npos) << check.err;
  const int master_pid = std::atoi(check.err.c_str() + at + 4);
  ASSERT_GT(master_pid, 0);
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  const ino_t theirs = st.st_ino;

  ASSERT_TRUE(TetherF({"up", "testhost"}).ok());
  nlohmann::json cp = ControlPathStatus();
  ASSERT_TRUE(cp.is_object()) << cp;
  EXPECT_EQ(cp.value("state", ""), "held") << cp;
  EXPECT_EQ(cp.value("pid", 0), master_pid) << cp;
  const std::string says =
      "ControlPath " + path + " is held by an OpenSSH master, pid " + std::to_string(master_pid);
  CommandResult text = TetherF({"status"});
  EXPECT_NE(text.out.find(says), std::string::npos) << text.out;
  CommandResult doctor = TetherF({"doctor", "testhost"});
  EXPECT_NE(doctor.out.find(says), std::string::npos) << doctor.out;
  // ssh still reaches its own master.
  check = PlainSsh({"-O", "check", "testhost"});
  EXPECT_NE(check.err.find("pid=" + std::to_string(master_pid)), std::string::npos) << check.err;

  ASSERT_TRUE(TetherF({"down", "testhost"}).ok());
  ASSERT_EQ(::lstat(path.c_str(), &st), 0) << "down removed the OpenSSH master's socket";
  EXPECT_EQ(st.st_ino, theirs);
  EXPECT_TRUE(PlainSsh({"-O", "exit", "testhost"}).ok());
  ::kill(master_pid, SIGTERM);  // ended by its pid should -O exit not have
}

TEST_F(ControlPathTest, AStaleSocketIsReplaced) {
  const std::string path = SshsControlPath();
  {
    auto stale = net::ListenUnix(path);
    ASSERT_TRUE(stale.ok()) << stale.error().ToString();
  }  // closed: the file stays, nobody accepts
  ASSERT_TRUE(TetherF({"up", "testhost"}).ok());
  nlohmann::json cp = ControlPathStatus();
  ASSERT_TRUE(cp.is_object()) << cp;
  EXPECT_EQ(cp.value("state", ""), "serving") << cp;
  const size_t logins = Logins();
  EXPECT_EQ(PlainSsh({"testhost", "echo", "ok"}).out, "ok\n");
  EXPECT_EQ(Logins(), logins) << sshd_.LogTail();
}

TEST_F(ControlPathTest, AMissingDirectoryIsReportedAndNotMade) {
  WriteConfig(scratch_.File("not-made") + "/%r@%h-%p");
  ASSERT_TRUE(TetherF({"up", "testhost"}).ok());
  nlohmann::json cp = ControlPathStatus();
  ASSERT_TRUE(cp.is_object()) << cp;
  EXPECT_EQ(cp.value("state", ""), "no directory") << cp;
  EXPECT_NE(::access(scratch_.File("not-made").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace tether::testing
