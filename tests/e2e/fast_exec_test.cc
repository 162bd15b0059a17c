// End-to-end: `tether up --fast-exec`, commands through the resident runner on the server
// (tether-agent --runner over a direct-streamlocal channel each), against a real sshd.
// What a session gives a command, the runner must give too: the command line run by the
// user's shell, stdin/stdout/stderr apart and whole, the exit status, the environment
// (the user's rc files read as for `ssh host cmd`), the directory, umask and limits; and
// what it cannot take, or when it is gone, goes as a session.
//
// The server's HOME is a directory of the test (sshd's SetEnv), so the test's rc files
// and the runner's copy live there and nothing of the machine's own home is touched.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class FastExecTest : public TetherTest {
 protected:
  void SetUp() override {
    home_ = scratch_.File("server-home");
    ASSERT_EQ(::mkdir(home_.c_str(), 0700), 0);
    WriteRc("one", "");
    sshd_options_.extra_config.push_back("SetEnv HOME=" + home_);
    TetherTest::SetUp();
  }

  // The server's ~/.bashrc: exports RC_MARK=`mark`, after `extra` (shell lines); each
  // time a shell reads it, it adds a line to ~/rc-reads.
  void WriteRc(const std::string& mark, const std::string& extra) {
    ASSERT_TRUE(WriteFile(home_ + "/.bashrc", extra + "echo read >> \"$HOME/rc-reads\"\n" +
                                                  "export RC_MARK=" + mark + "\n")
                    .ok());
  }
  size_t RcReads() { return CountOccurrences(ReadFileOrEmpty(home_ + "/rc-reads"), "read"); }

  CommandResult Exec(const std::vector<std::string>& command, std::string_view input = {}) {
    std::vector<std::string> args = {"-F", sshd_.config_path(), "exec", "testhost", "--"};
    args.insert(args.end(), command.begin(), command.end());
    return RunTether(state_.path(), args, seconds(60), {}, input);
  }
  nlohmann::json FastExec() {
    nlohmann::json host = Host();
    return host.contains("fast_exec") && host["fast_exec"].is_object() ? host["fast_exec"]
                                                                       : nlohmann::json::object();
  }
  uint64_t ByRunner() {
    auto f = FastExec();
    return f.is_object() ? f.value("by_runner", uint64_t{0}) : 0;
  }
  bool WaitReady(milliseconds within = seconds(30)) {
    return WaitFor(
        [&] {
          auto f = FastExec();
          return f.is_object() && f.value("state", "") == "ready";
        },
        within, milliseconds(100));
  }
  void UpFast() {
    CommandResult up = Tether({"-v", "up", "testhost", "--fast-exec"});
    ASSERT_TRUE(up.ok()) << up.Describe();
    ASSERT_TRUE(WaitReady()) << FastExec().dump() << "\n"
                             << ReadFileOrEmpty(StatePath("testhost.log"));
    // The first command with variables (tether exec sends LANG) teaches the daemon what the
    // server's AcceptEnv takes; from then on such commands go by the runner too.
    CommandResult first = Exec({"true"});
    ASSERT_TRUE(first.ok()) << first.Describe();
  }
  // The runner's pid: the `--runner` process of the copy in the server's home.
  pid_t RunnerPid() {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = ReadFileOrEmpty(entry.path().string() + "/cmdline");
      if (cmdline.rfind(home_ + "/.cache/tether/bin/", 0) == 0 &&
          cmdline.find("--runner") != std::string::npos) {
        return static_cast<pid_t>(std::stol(name));
      }
    }
    return 0;
  }

  std::string home_;
};

// `env` minus what differs between any two commands (and SHLVL: a command by the runner
// is the shell's child, one level down; bash reads ~/.bashrc under sshd only at level 1).
std::set<std::string> StableEnv(const std::string& env) {
  std::set<std::string> out;
  std::istringstream in(env);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("SHLVL=", 0) == 0 || line.rfind("_=", 0) == 0 || line.empty()) continue;
    out.insert(line);
  }
  return out;
}

TEST_F(FastExecTest, ACommandByTheRunnerGetsWhatASessionGives) {
  UpFast();
  const uint64_t before = ByRunner();
  CommandResult r = Exec({"exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.Describe();
  r = Exec({"kill -TERM $$"});
  EXPECT_EQ(r.exit_code, 128 + 15) << r.Describe();
  r = Exec({"echo", "a  b", "$((6*7))"});
  EXPECT_EQ(r.out, "a b 42\n") << r.Describe();
  r = Exec({"echo to-out; echo to-err >&2; echo more-out"});
  EXPECT_EQ(r.out, "to-out\nmore-out\n");
  EXPECT_EQ(r.err, "to-err\n") << r.Describe();
  std::string data = PatternBytes(9, 8u << 20);
  r = Exec({"cat"}, data);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Sha256Hex(r.out), Sha256Hex(data));
  // What the rc file set, the directory (sshd's: the account's home), umask and limits,
  // SSH_CONNECTION: as a session.
  r = Exec({"echo $RC_MARK; pwd; umask; ulimit -n; ulimit -u; echo ${SSH_CONNECTION:+set}"});
  CommandResult s =
      RunTether(state_.path(), {"-F", sshd_.config_path(), "exec", "testhost", "--session", "--",
                                "echo $RC_MARK; pwd; umask; ulimit -n; ulimit -u; "
                                "echo ${SSH_CONNECTION:+set}"});
  EXPECT_EQ(r.out.rfind("one\n/", 0), 0u) << r.Describe();
  EXPECT_EQ(r.out, s.out) << r.Describe() << s.Describe();
  CommandResult env_runner = Exec({"env"});
  CommandResult env_session = RunTether(
      state_.path(), {"-F", sshd_.config_path(), "exec", "testhost", "--session", "--", "env"});
  EXPECT_EQ(StableEnv(env_runner.out), StableEnv(env_session.out))
      << "by the runner:\n"
      << env_runner.out << "as a session:\n"
      << env_session.out;
  // Every one of those but the two --session ones went by the runner.
  EXPECT_EQ(ByRunner(), before + 7) << FastExec().dump();
  // The rc file was read for the runner's start and for each session, never for a
  // command by the runner (what it did is in the captured environment).
  const size_t reads = RcReads();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Exec({"echo $RC_MARK"}).out, "one\n");
  EXPECT_EQ(RcReads(), reads);
}

TEST_F(FastExecTest, StockSshThroughTheMuxGoesByTheRunnerWithoutAPty) {
  UpFast();
  const uint64_t before = ByRunner();
  CommandResult r = Ssh({"testhost", "echo hi; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_EQ(r.out, "hi\n");
  EXPECT_NE(r.err.find("err\n"), std::string::npos) << r.Describe();
  std::string data = PatternBytes(4, 2u << 20);
  r = Ssh({"testhost", "sha256sum | cut -d' ' -f1"}, data);
  EXPECT_EQ(r.out, Sha256Hex(data) + "\n") << r.Describe();
  // ssh -n: stdin closed at once.
  r = Ssh({"-n", "testhost", "cat; echo after"});
  EXPECT_EQ(r.out, "after\n") << r.Describe();
  const uint64_t by_runner = ByRunner();
  EXPECT_EQ(by_runner, before + 3) << FastExec().dump();
  // With a pty it is a session.
  r = Ssh({"-tt", "testhost", "tty"});
  EXPECT_NE(r.out.find("/dev/pts/"), std::string::npos) << r.Describe();
  EXPECT_EQ(ByRunner(), by_runner);
}

// What moves files over exec: scp -O, rsync both ways, git push and clone, by the runner
// (and scp's SFTP, a subsystem, as a session), byte-identical.
TEST_F(FastExecTest, CopiesByTheRunnerArriveWhole) {
  UpFast();
  const uint64_t before = ByRunner();
  const std::string src = scratch_.File("payload.bin");
  ASSERT_TRUE(WriteFile(src, PatternBytes(3, 5u << 20)).ok());
  const std::string want = Sha256Hex(ReadFile(src).value());
  const std::vector<std::string> mux = {"-F", sshd_.config_path(),       "-o", "ControlMaster=no",
                                        "-o", "ControlPath=" + MuxPath()};
  auto scp = [&](bool legacy, const std::string& from, const std::string& to) {
    std::vector<std::string> argv = {"scp", "-q"};
    if (legacy) argv.push_back("-O");
    argv.insert(argv.end(), mux.begin(), mux.end());
    argv.insert(argv.end(), {from, to});
    return RunCommand(argv, {}, seconds(60));
  };
  CommandResult r = scp(true, src, "testhost:" + scratch_.File("scp-up"));
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(Sha256Hex(ReadFile(scratch_.File("scp-up")).value()), want);
  r = scp(true, "testhost:" + src, scratch_.File("scp-down"));
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(Sha256Hex(ReadFile(scratch_.File("scp-down")).value()), want);
  const uint64_t after_scp = ByRunner();
  EXPECT_EQ(after_scp, before + 2);
  r = scp(false, src, "testhost:" + scratch_.File("sftp-up"));  // SFTP: a session
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(Sha256Hex(ReadFile(scratch_.File("sftp-up")).value()), want);
  EXPECT_EQ(ByRunner(), after_scp);

  const std::string ssh =
      "ssh -F " + sshd_.config_path() + " -o ControlMaster=no -o ControlPath=" + MuxPath();
  r = RunCommand({"rsync", "-e", ssh, src, "testhost:" + scratch_.File("rsync-up")}, {},
                 seconds(60));
  ASSERT_TRUE(r.ok()) << r.Describe();
  r = RunCommand(
      {"rsync", "-e", ssh, "testhost:" + scratch_.File("rsync-up"), scratch_.File("rsync-down")},
      {}, seconds(60));
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(Sha256Hex(ReadFile(scratch_.File("rsync-down")).value()), want);

  auto readme = GitPushAndClone(scratch_.path(), ssh);
  ASSERT_TRUE(readme.ok()) << readme.error().ToString();
  EXPECT_EQ(*readme, "hello\n");
  // rsync twice and the clone by the runner; git's push sent GIT_PROTOCOL (ssh -o
  // SendEnv), which no session had shown the server's AcceptEnv verdict on yet: it ran as a
  // session, which taught it.
  EXPECT_EQ(ByRunner(), after_scp + 3) << FastExec().dump();
}

TEST_F(FastExecTest, TheClientGoingAwayEndsTheCommandsProcessGroup) {
  UpFast();
  const std::string pids = scratch_.File("pids");
  auto client = SpawnProcess({TetherBinary(), "-F", sshd_.config_path(), "exec", "testhost", "--",
                              "sleep 600 & echo $$ $! > " + pids + "; wait"},
                             {{"TETHER_STATE_DIR", state_.path()}});
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  ASSERT_TRUE(
      WaitFor([&] { return ReadFileOrEmpty(pids).find(' ') != std::string::npos; }, seconds(20)));
  std::istringstream in(ReadFileOrEmpty(pids));
  pid_t shell = 0, sleeper = 0;
  in >> shell >> sleeper;
  ASSERT_GT(sleeper, 0);
  ASSERT_TRUE(ProcessAlive(sleeper));
  client->Kill();
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(sleeper) && !ProcessAlive(shell); }, seconds(10)))
      << "the command's process group outlived its client";
  if (ProcessAlive(sleeper)) ::kill(sleeper, SIGKILL);
}

TEST_F(FastExecTest, AChangedRcFileIsReadByTheNextCommand) {
  UpFast();
  EXPECT_EQ(Exec({"echo $RC_MARK"}).out, "one\n");
  const uint64_t before = ByRunner();
  WriteRc("two-changed", "");
  // The runner refuses it (its environment is stale): a session runs it, with the new rc.
  EXPECT_EQ(Exec({"echo $RC_MARK"}).out, "two-changed\n");
  EXPECT_EQ(ByRunner(), before);
  // And the runner comes back with it.
  ASSERT_TRUE(WaitReady()) << FastExec().dump();
  CommandResult r = Exec({"echo $RC_MARK"});
  EXPECT_EQ(r.out, "two-changed\n") << r.Describe();
  EXPECT_EQ(ByRunner(), before + 1) << FastExec().dump();
}

TEST_F(FastExecTest, ARunnerKilledMidCommandIsACleanErrorAndComesBack) {
  UpFast();
  const pid_t runner = RunnerPid();
  ASSERT_GT(runner, 0);
  std::atomic<bool> done{false};
  CommandResult mid;
  std::thread t([&] {
    mid = Exec({"echo started; sleep 20; echo finished"});
    done = true;
  });
  const bool started = WaitFor([&] { return ByRunner() >= 1; }, seconds(10));
  std::this_thread::sleep_for(milliseconds(300));
  const bool killed = started && ::kill(runner, SIGKILL) == 0;
  EXPECT_TRUE(WaitFor([&] { return done.load(); }, seconds(15)));
  t.join();  // bounded by Exec's own timeout
  ASSERT_TRUE(started && killed);
  EXPECT_EQ(mid.exit_code, 255) << mid.Describe();
  EXPECT_EQ(mid.out, "started\n");
  EXPECT_NE(mid.err.find("runner"), std::string::npos) << mid.Describe();
  // The next command runs (as a session, or by the runner already back), and the runner is
  // started again.
  CommandResult next = Exec({"echo next"});
  EXPECT_EQ(next.out, "next\n") << next.Describe();
  ASSERT_TRUE(WaitReady()) << FastExec().dump();
  EXPECT_GE(FastExec().value("restarts", 0), 1) << FastExec().dump();
  EXPECT_NE(RunnerPid(), runner);
  const uint64_t before = ByRunner();
  EXPECT_EQ(Exec({"echo again"}).out, "again\n");
  EXPECT_EQ(ByRunner(), before + 1);
}

TEST_F(FastExecTest, AnotherAccountCannotReachTheRunner) {
  OtherAccount other;
  if (!other.ok()) GTEST_SKIP() << other.error();
  UpFast();
  const pid_t runner = RunnerPid();
  ASSERT_GT(runner, 0);
  // Its socket: the unix socket it listens on, from its descriptors' table.
  std::string socket;
  std::istringstream net(ReadFileOrEmpty("/proc/" + std::to_string(runner) + "/net/unix"));
  for (std::string line; std::getline(net, line);) {
    size_t at = line.find("/runner-");
    if (at != std::string::npos) socket = line.substr(line.rfind(' ') + 1);
  }
  ASSERT_FALSE(socket.empty());
  struct stat st {};
  ASSERT_EQ(::stat(socket.c_str(), &st), 0) << socket;
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string dir = socket.substr(0, socket.rfind('/'));
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u) << dir;
  // A run request from the other account: refused at connect (the directory), and were
  // it let in, closed unanswered (the peer's uid).
  CommandResult r =
      other.Run({"/usr/bin/python3", "-c",
                 "import socket,struct,sys\n"
                 "s=socket.socket(socket.AF_UNIX); s.settimeout(5)\n"
                 "try: s.connect(sys.argv[1])\n"
                 "except OSError as e: print('refused', e.errno); sys.exit(0)\n"
                 "cmd=b'touch /tmp/served'\n"
                 "s.sendall(b'R'+struct.pack('>I',len(cmd)+4)+struct.pack('>I',len(cmd))+cmd)\n"
                 "try: print('served' if s.recv(100) else 'closed')\n"
                 "except OSError as e: print('closed', e.errno)\n",
                 socket});
  EXPECT_TRUE(r.out.rfind("refused", 0) == 0 || r.out.rfind("closed", 0) == 0) << r.Describe();
  // The runner still serves its owner.
  EXPECT_EQ(Exec({"echo still"}).out, "still\n");
}

// A server whose sshd forbids streamlocal channels: every command still runs (as a
// session), and after a few tries the runner is given up, with the reason in status.
class FastExecNoStreamLocalTest : public FastExecTest {
 protected:
  void SetUp() override {
    sshd_options_.extra_config.push_back("AllowStreamLocalForwarding no");
    FastExecTest::SetUp();
  }
};

TEST_F(FastExecNoStreamLocalTest, CommandsRunAsSessionsAndStatusSaysWhy) {
  CommandResult up = Tether({"-v", "up", "testhost", "--fast-exec"});
  ASSERT_TRUE(up.ok()) << up.Describe();
  ASSERT_TRUE(WaitReady()) << FastExec().dump();
  // Each refused open restarts the runner; the third in a row gives it up.
  nlohmann::json f = nlohmann::json::object();
  for (int i = 0; i < 20 && f.value("state", "") != "unavailable"; ++i) {
    CommandResult r = Exec({"echo " + std::to_string(i)});
    EXPECT_EQ(r.out, std::to_string(i) + "\n") << r.Describe();
    EXPECT_EQ(r.exit_code, 0);
    WaitReady(milliseconds(500));
    f = FastExec();
  }
  EXPECT_EQ(f.value("state", ""), "unavailable") << f.dump();
  EXPECT_NE(f.value("why", "").find("AllowStreamLocalForwarding"), std::string::npos) << f.dump();
  EXPECT_EQ(f.value("by_runner", 1), 0) << f.dump();
  CommandResult status = Tether({"status"});
  EXPECT_NE(status.out.find("fast exec: runner unavailable"), std::string::npos) << status.out;
}

// The runner's last guard, alone: were its socket open to all (a directory that lets
// others in), another account's connection is closed unread and its command never runs.
TEST(FastExecRunner, ClosesAnotherAccountsConnectionUnread) {
  OtherAccount other;
  if (!other.ok()) GTEST_SKIP() << other.error();
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  const std::string socket = dir.File("r.sock");
  const std::string tether = TetherBinary();
  const std::string agent = tether.substr(0, tether.rfind('/')) + "/tether-agent";
  // Its stdin open (the runner ends when it closes), for at most 30 s.
  auto runner =
      SpawnProcess({"sh", "-c", "sleep 30 | exec " + agent + " --runner --socket " + socket});
  ASSERT_TRUE(runner.ok()) << runner.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return ::access(socket.c_str(), F_OK) == 0; }, seconds(10)));
  ASSERT_EQ(::chmod(socket.c_str(), 0666), 0);
  const std::string made = dir.File("served");
  CommandResult r =
      other.Run({"/usr/bin/python3", "-c",
                 "import socket,struct,sys\n"
                 "s=socket.socket(socket.AF_UNIX); s.settimeout(5)\n"
                 "s.connect(sys.argv[1])\n"
                 "cmd=('touch '+sys.argv[2]).encode()\n"
                 "try:\n"
                 " s.sendall(b'R'+struct.pack('>I',len(cmd)+4)+struct.pack('>I',len(cmd))+cmd)\n"
                 " print('served' if s.recv(100) else 'closed')\n"
                 "except OSError as e: print('closed', e.errno)\n",
                 socket, made});
  EXPECT_EQ(r.out.rfind("closed", 0), 0u) << r.Describe();
  EXPECT_NE(::access(made.c_str(), F_OK), 0) << "another account's command ran";
  // Its owner is served.
  CommandResult mine =
      RunCommand({"/usr/bin/python3", "-c",
                  "import socket,struct,sys\n"
                  "s=socket.socket(socket.AF_UNIX); s.settimeout(5)\n"
                  "s.connect(sys.argv[1])\n"
                  "cmd=b'true'\n"
                  "s.sendall(b'R'+struct.pack('>I',len(cmd)+4)+struct.pack('>I',len(cmd))+cmd)\n"
                  "print('served' if s.recv(100)[:1] == b'S' else 'closed')\n",
                  socket});
  EXPECT_EQ(mine.out, "served\n") << mine.Describe();
  ::kill(-runner->pid(), SIGKILL);  // its process group: sh, sleep and the runner
  runner->Kill();
}

TEST_F(FastExecTest, TwoHundredCommandsFiftyAtOnceAllRight) {
  UpFast();
  const uint64_t before = ByRunner();
  constexpr int kThreads = 50, kEach = 4;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string tag = std::to_string(t) + "-" + std::to_string(i);
        CommandResult r =
            Exec({"echo " + tag + "; echo e" + tag + " >&2; exit " + std::to_string(i)});
        if (r.out != tag + "\n" || r.err != "e" + tag + "\n" || r.exit_code != i) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(ByRunner(), before + kThreads * kEach) << FastExec().dump();
}

}  // namespace
}  // namespace tether::testing
