// Tests of the test bed itself, against stock OpenSSH: if these pass, an e2e failure of
// tether is tether's, not the bed's.
#include "e2e/testbed.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <vector>

namespace tether::testing {
namespace {

using namespace std::chrono_literals;

// `ssh -F config testhost <command...>` with a bounded timeout.
CommandResult Ssh(const std::string& config, std::vector<std::string> args,
                  std::string_view stdin_data = {}) {
  std::vector<std::string> argv = {"ssh", "-F", config};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, {}, 20s, stdin_data);
}

// Starts `ssh -N -L local:127.0.0.1:target testhost` and waits until the forward listens.
Result<Child> OpenSshForward(const Sshd& sshd, uint16_t local, uint16_t target,
                             const std::string& log) {
  auto child =
      SpawnProcess({"ssh", "-F", sshd.config_path(), "-N", "-o", "ExitOnForwardFailure=yes", "-L",
                    std::to_string(local) + ":127.0.0.1:" + std::to_string(target), "testhost"},
                   {}, log);
  if (!child.ok()) return child;
  if (!WaitFor([&] { return !child->Running() || PortAccepts(local); }, 10s) || !child->Running()) {
    auto text = ReadFile(log);
    return MakeError("ssh -L", "forward did not come up: " + (text.ok() ? *text : ""));
  }
  return child;
}

TEST(TestBedTempDir, IsPrivateAndRemovedWithEverythingInIt) {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(path.rfind("/tmp/tether-e2e-", 0), 0u);
    std::filesystem::create_directories(dir.File("a/b"));
    ASSERT_TRUE(WriteFile(dir.File("a/b/c"), "x").ok());
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(TestBedFreeTcpPort, ReturnsABindablePort) {
  uint16_t port = FreeTcpPort();
  ASSERT_NE(port, 0);
  EchoServer server(port);
  ASSERT_TRUE(server.status().ok()) << server.status().error().ToString();
  EXPECT_EQ(server.port(), port);
}

TEST(TestBedRunCommand, CapturesOutputErrorAndExitCode) {
  auto r = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.pipes_left_open);
}

TEST(TestBedRunCommand, PassesStdinAndEnvironment) {
  auto r = RunCommand({"sh", "-c", "cat; printf %s \"$TESTBED_VAR\""}, {{"TESTBED_VAR", "v1"}}, 10s,
                      "from stdin\n");
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "from stdin\nv1");
}

TEST(TestBedRunCommand, CopesWithLargeOutputOnBothPipes) {
  auto r = RunCommand({"sh", "-c", "head -c 3000000 /dev/zero; head -c 2000000 /dev/zero >&2"});
  EXPECT_TRUE(r.ok()) << r.exit_code;
  EXPECT_EQ(r.out.size(), 3000000u);
  EXPECT_EQ(r.err.size(), 2000000u);
}

TEST(TestBedRunCommand, KillsTheProcessGroupAtTheTimeout) {
  TempDir dir;
  const std::string pid_file = dir.File("background.pid");
  auto start = std::chrono::steady_clock::now();
  auto r = RunCommand({"sh", "-c", "sleep 30 & echo $! > " + pid_file + "; sleep 30"}, {}, 500ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // The whole group, not only the shell: its background sleep is gone too.
  auto text = ReadFile(pid_file);
  ASSERT_TRUE(text.ok()) << text.error().ToString();
  const pid_t background = static_cast<pid_t>(std::atol(text->c_str()));
  ASSERT_GT(background, 1);
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(background); }, 5s))
      << "the background sleep " << background << " outlived its group";
}

TEST(TestBedRunCommand, ReportsAMissingProgram) {
  auto r = RunCommand({"no-such-program-tether-e2e"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
}

TEST(TestBedRunCommand, ReportsADescendantHoldingItsPipes) {
  // What a daemon that forgot to redirect its stdio looks like.
  auto r = RunCommand({"sh", "-c", "sleep 20 & echo $!"}, {}, 10s);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.pipes_left_open);
  pid_t pid = static_cast<pid_t>(std::atol(r.out.c_str()));
  ASSERT_GT(pid, 1);
  EXPECT_TRUE(ProcessAlive(pid));
  EXPECT_TRUE(TerminatePid(pid));
}

TEST(TestBedChild, TerminateEndsAndReapsIt) {
  auto child = SpawnProcess({"sleep", "30"});
  ASSERT_TRUE(child.ok()) << child.error().ToString();
  pid_t pid = child->pid();
  EXPECT_TRUE(child->Running());
  EXPECT_EQ(child->Terminate(2s), 128 + SIGTERM);
  EXPECT_FALSE(child->Running());
  EXPECT_FALSE(ProcessAlive(pid));
}

TEST(TestBedChild, DestructorKillsItAndLogGetsOutput) {
  TempDir dir;
  pid_t pid = -1;
  {
    auto child = SpawnProcess({"sh", "-c", "echo started; exec sleep 30"}, {}, dir.File("log"));
    ASSERT_TRUE(child.ok()) << child.error().ToString();
    pid = child->pid();
    EXPECT_TRUE(WaitFor(
        [&] {
          auto text = ReadFile(dir.File("log"));
          return text.ok() && *text == "started\n";
        },
        5s));
  }
  EXPECT_FALSE(ProcessAlive(pid));
}

TEST(TestBedServers, EchoServerEchoesHalfCloseIncluded) {
  EchoServer echo;
  ASSERT_TRUE(echo.status().ok()) << echo.status().error().ToString();
  std::string data = PatternBytes(7, 3 * 1024 * 1024 + 17);
  auto got = EchoRoundTrip(echo.port(), data, 20s);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->size(), data.size());
  EXPECT_TRUE(*got == data);
}

TEST(TestBedServers, EchoServerServes200ConcurrentConnections) {
  EchoServer echo;
  ASSERT_TRUE(echo.status().ok());
  constexpr int kConnections = 200;
  std::vector<UniqueFd> fds;
  for (int i = 0; i < kConnections; ++i) {
    auto fd = ConnectTcp(echo.port());
    ASSERT_TRUE(fd.ok()) << i << ": " << fd.error().ToString();
    fds.push_back(std::move(*fd));
  }
  // All open at once, then each one used.
  for (int i = 0; i < kConnections; ++i) {
    std::string msg = "hello " + std::to_string(i) + "\n";
    ASSERT_TRUE(SendAll(fds[i].get(), msg, 5s).ok());
    auto reply = ReceiveUntil(fds[i].get(), "\n", 5s);
    ASSERT_TRUE(reply.ok()) << reply.error().ToString();
    EXPECT_EQ(*reply, msg);
  }
  EXPECT_TRUE(WaitFor([&] { return echo.active() == kConnections; }, 5s)) << echo.active();
  fds.clear();
  EXPECT_TRUE(WaitFor([&] { return echo.active() == 0; }, 5s)) << echo.active();
  EXPECT_EQ(echo.accepted(), static_cast<uint64_t>(kConnections));
}

TEST(TestBedServers, SinkAndSourceAgreeOnThePattern) {
  constexpr uint64_t kBytes = 5 * 1024 * 1024 + 3;
  // Chunking does not change the pattern.
  PatternGenerator gen(42);
  std::string pieces(kBytes, '\0');
  gen.Fill(pieces.data(), 1);
  gen.Fill(pieces.data() + 1, 12345);
  gen.Fill(pieces.data() + 12346, kBytes - 12346);
  EXPECT_TRUE(pieces == PatternBytes(42, kBytes));
  EXPECT_EQ(Sha256Hex(pieces), PatternSha256(42, kBytes));
  EXPECT_NE(PatternSha256(42, kBytes), PatternSha256(43, kBytes));
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  SinkServer sink;
  ASSERT_TRUE(sink.status().ok());
  auto sent = SendToSink(sink.port(), kBytes, 42);
  ASSERT_TRUE(sent.ok()) << sent.error().ToString();
  EXPECT_EQ(sent->bytes, kBytes);
  EXPECT_EQ(sent->sha256_hex, PatternSha256(42, kBytes));
  ASSERT_TRUE(sink.WaitForRecords(1, 5s));
  EXPECT_EQ(sink.records()[0].sha256_hex, sent->sha256_hex);

  SourceServer source(kBytes, 42);
  ASSERT_TRUE(source.status().ok());
  auto got = ReadFromSource(source.port());
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->bytes, kBytes);
  EXPECT_EQ(got->sha256_hex, source.expected_sha256());
  EXPECT_EQ(got->sha256_hex, sent->sha256_hex);
}

TEST(TestBedServers, PausedSinkStopsReading) {
  SinkServer sink;
  ASSERT_TRUE(sink.status().ok());
  sink.SetPaused(true);
  auto fd = ConnectTcp(sink.port());
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(SendAll(fd->get(), "abc", 1s).ok());
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(sink.bytes_received(), 0u);
  sink.SetPaused(false);
  EXPECT_TRUE(WaitFor([&] { return sink.bytes_received() == 3; }, 5s));
}

TEST(TestBedServers, HttpServerAnswersGetAndCurl) {
  HttpServer http("body text\n");
  ASSERT_TRUE(http.status().ok());
  auto r = HttpGet(http.port(), "/x?y=1");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "body text\n");
  EXPECT_NE(r->headers.find("Content-Length: 10"), std::string::npos);
  auto curl = RunCommand(
      {"curl", "-sS", "--max-time", "5", "http://127.0.0.1:" + std::to_string(http.port()) + "/c"});
  EXPECT_TRUE(curl.ok()) << curl.Describe();
  EXPECT_EQ(curl.out, "body text\n");
  EXPECT_EQ(http.requests_served(), 2u);
  ASSERT_EQ(http.request_lines().size(), 2u);
  EXPECT_EQ(http.request_lines()[0], "GET /x?y=1 HTTP/1.1");
}

TEST(TestBedServers, StopClosesThePort) {
  EchoServer echo;
  ASSERT_TRUE(echo.status().ok());
  auto fd = ConnectTcp(echo.port());
  ASSERT_TRUE(fd.ok());
  echo.Stop();
  EXPECT_FALSE(PortAccepts(echo.port()));
  // The open connection was ended too.
  auto rest = ReceiveAll(fd->get(), 2s);
  EXPECT_TRUE(!rest.ok() || rest->empty());
}

TEST(TestBedSshd, StartsAndAcceptsTheUserKeyOnly) {
  Sshd sshd;
  Status s = sshd.Start();
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_NE(sshd.port(), 0);
  EXPECT_TRUE(ProcessAlive(sshd.pid()));
  EXPECT_EQ(sshd.host_key_sha256_fingerprint().rfind("SHA256:", 0), 0u);
  EXPECT_EQ(sshd.host_pubkey_line().rfind("ssh-ed25519 ", 0), 0u);

  auto ok = Ssh(sshd.config_path(), {"testhost", "echo", "hi"});
  EXPECT_TRUE(ok.ok()) << ok.Describe() << "\n" << sshd.LogTail();
  EXPECT_EQ(ok.out, "hi\n");

  std::string wrong_cfg = sshd.dir() + "/ssh_config_wrong_key";
  ClientConfigOptions wrong;
  wrong.overrides["identityfile"] = sshd.wrong_key_path();  // keywords ignore case
  ASSERT_TRUE(sshd.WriteClientConfig(wrong_cfg, wrong).ok());
  auto denied = Ssh(wrong_cfg, {"testhost", "true"});
  EXPECT_EQ(denied.exit_code, 255) << denied.Describe();
  EXPECT_NE(denied.err.find("Permission denied"), std::string::npos) << denied.err;

  std::string mismatch_cfg = sshd.dir() + "/ssh_config_mismatch";
  ClientConfigOptions mismatch;
  mismatch.host = "other";
  mismatch.overrides["UserKnownHostsFile"] = sshd.mismatched_known_hosts_path();
  ASSERT_TRUE(sshd.WriteClientConfig(mismatch_cfg, mismatch).ok());
  auto changed = Ssh(mismatch_cfg, {"other", "true"});
  EXPECT_EQ(changed.exit_code, 255) << changed.Describe();
  EXPECT_NE(changed.err.find("Host key verification failed"), std::string::npos) << changed.err;
}

TEST(TestBedSshd, ForwardsThroughOpenSshLocalForward) {
  Sshd sshd;
  ASSERT_TRUE(sshd.Start().ok());
  EchoServer echo;
  SinkServer sink;
  SourceServer source(uint64_t{2} * 1024 * 1024, 9);
  TempDir logs;

  uint16_t echo_fwd = FreeTcpPort(), sink_fwd = FreeTcpPort(), source_fwd = FreeTcpPort();
  auto f1 = OpenSshForward(sshd, echo_fwd, echo.port(), logs.File("f1.log"));
  ASSERT_TRUE(f1.ok()) << f1.error().ToString();
  auto f2 = OpenSshForward(sshd, sink_fwd, sink.port(), logs.File("f2.log"));
  ASSERT_TRUE(f2.ok()) << f2.error().ToString();
  auto f3 = OpenSshForward(sshd, source_fwd, source.port(), logs.File("f3.log"));
  ASSERT_TRUE(f3.ok()) << f3.error().ToString();

  auto echoed = EchoRoundTrip(echo_fwd, "ping through ssh -L");
  ASSERT_TRUE(echoed.ok()) << echoed.error().ToString();
  EXPECT_EQ(*echoed, "ping through ssh -L");

  auto sent = SendToSink(sink_fwd, 4 * 1024 * 1024 + 1, 5);
  EXPECT_TRUE(sent.ok()) << sent.error().ToString();

  auto got = ReadFromSource(source_fwd);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->sha256_hex, source.expected_sha256());

  // 50 connections at once through the one SSH connection.
  std::vector<std::future<Result<std::string>>> calls;
  for (int i = 0; i < 50; ++i) {
    calls.push_back(std::async(std::launch::async, [echo_fwd, i] {
      return EchoRoundTrip(echo_fwd, "conn " + std::to_string(i), 20s);
    }));
  }
  for (int i = 0; i < 50; ++i) {
    auto r = calls[i].get();
    ASSERT_TRUE(r.ok()) << i << ": " << r.error().ToString();
    EXPECT_EQ(*r, "conn " + std::to_string(i));
  }
}

TEST(TestBedSshd, ExtraConfigReplacesTheTestBedsLine) {
  Sshd sshd;
  SshdOptions options;
  options.extra_config = {"AllowTcpForwarding no", "ClientAliveInterval 30"};
  ASSERT_TRUE(sshd.Start(options).ok());
  auto cfg = ReadFile(sshd.sshd_config_path());
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->find("AllowTcpForwarding yes"), std::string::npos) << *cfg;
  EXPECT_NE(cfg->find("AllowTcpForwarding no"), std::string::npos) << *cfg;
  EchoServer echo;
  auto r = Ssh(sshd.config_path(), {"-W", "127.0.0.1:" + std::to_string(echo.port()), "testhost"},
               "data");
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("administratively prohibited"), std::string::npos) << r.err;
}

TEST(TestBedSshd, StdioForwardReachesAnEchoServer) {
  Sshd sshd;
  ASSERT_TRUE(sshd.Start().ok());
  EchoServer echo;
  auto r = Ssh(sshd.config_path(), {"-W", "127.0.0.1:" + std::to_string(echo.port()), "testhost"},
               "data over -W\n");
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "data over -W\n");
}

TEST(TestBedSshd, StopLeavesNoProcess) {
  Sshd sshd;
  ASSERT_TRUE(sshd.Start().ok());
  TempDir logs;
  auto client = SpawnProcess({"ssh", "-F", sshd.config_path(), "testhost", "sleep", "60"}, {},
                             logs.File("ssh.log"));
  ASSERT_TRUE(client.ok());
  pid_t listener = sshd.pid();
  std::vector<pid_t> sessions;
  // The session: "sshd: root [priv]", "sshd: root@notty", and the remote `sleep 60`;
  // OpenSSH 8.4 keeps a root login in one process, without [priv]: wait for the sleep.
  ASSERT_TRUE(WaitFor(
      [&] {
        sessions = ProcessDescendants(listener);
        return std::any_of(sessions.begin(), sessions.end(), [](pid_t p) {
          return ReadFileOrEmpty("/proc/" + std::to_string(p) + "/comm") == "sleep\n";
        });
      },
      10s))
      << sessions.size();
  sshd.Stop();
  EXPECT_FALSE(ProcessAlive(listener));
  for (pid_t p : sessions) EXPECT_FALSE(ProcessAlive(p)) << p;
  EXPECT_FALSE(PortAccepts(sshd.port()));
  EXPECT_TRUE(client->Wait(10s).has_value());  // the client saw its connection end
  EXPECT_FALSE(sshd.running());
}

TEST(TestBedSshd, RestartKeepsPortAndKeys) {
  Sshd sshd;
  ASSERT_TRUE(sshd.Start().ok());
  uint16_t port = sshd.port();
  pid_t old_pid = sshd.pid();
  Status s = sshd.Restart();
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_EQ(sshd.port(), port);
  EXPECT_NE(sshd.pid(), old_pid);
  EXPECT_FALSE(ProcessAlive(old_pid));
  auto r = Ssh(sshd.config_path(), {"testhost", "true"});
  EXPECT_TRUE(r.ok()) << r.Describe();
}

TEST(TestBedSshd, DropConnectionsKeepsTheListener) {
  Sshd sshd;
  ASSERT_TRUE(sshd.Start().ok());
  TempDir logs;
  EchoServer echo;
  uint16_t fwd = FreeTcpPort();
  auto forward = OpenSshForward(sshd, fwd, echo.port(), logs.File("fwd.log"));
  ASSERT_TRUE(forward.ok()) << forward.error().ToString();
  sshd.DropConnections();
  EXPECT_TRUE(forward->Wait(10s).has_value()) << "ssh -N should exit when its connection drops";
  EXPECT_TRUE(sshd.running());
  auto r = Ssh(sshd.config_path(), {"testhost", "true"});
  EXPECT_TRUE(r.ok()) << r.Describe();
}

TEST(TestBedSshd, StopListenerKeepsEstablishedConnections) {
  Sshd sshd;
  ASSERT_TRUE(sshd.Start().ok());
  TempDir logs;
  EchoServer echo;
  uint16_t fwd = FreeTcpPort();
  auto forward = OpenSshForward(sshd, fwd, echo.port(), logs.File("fwd.log"));
  ASSERT_TRUE(forward.ok()) << forward.error().ToString();
  std::vector<pid_t> sessions = ProcessDescendants(sshd.pid());
  ASSERT_FALSE(sessions.empty());

  sshd.StopListener();
  EXPECT_FALSE(sshd.running());
  auto refused = Ssh(sshd.config_path(), {"testhost", "true"});
  EXPECT_EQ(refused.exit_code, 255);
  auto echoed = EchoRoundTrip(fwd, "still here");
  ASSERT_TRUE(echoed.ok()) << echoed.error().ToString();
  EXPECT_EQ(*echoed, "still here");

  sshd.Stop();  // ends the orphaned session processes too
  for (pid_t p : sessions) EXPECT_FALSE(ProcessAlive(p)) << p;
  EXPECT_TRUE(forward->Wait(10s).has_value());
}

TEST(TestBedTether, StopAllTethersEndsADaemonNamedByAPidFile) {
  TempDir state;
  // Not our child, like a real daemon: started through a shell that exits at once.
  auto r = RunCommand({"sh", "-c", "sleep 30 >/dev/null 2>&1 </dev/null & echo $!"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  pid_t pid = static_cast<pid_t>(std::atol(r.out.c_str()));
  ASSERT_TRUE(ProcessAlive(pid));
  ASSERT_TRUE(WriteFile(state.File("fake.pid"), std::to_string(pid) + "\n").ok());
  StopAllTethers(state.path());
  EXPECT_FALSE(ProcessAlive(pid));
}

// ---------------------------------------------------------------------------------------
// A hermetic environment

TEST(TestBedEnvironment, EveryProcessGetsAPrivateHomeAndNoneOfTheRunnersAgentOrSettings) {
  CommandResult r = RunCommand({"sh", "-c",
                                "echo \"$HOME|$XDG_CONFIG_HOME|${SSH_AUTH_SOCK-unset}|"
                                "${TETHER_CONFIG-unset}|${XDG_RUNTIME_DIR-unset}\""},
                               {}, 10s);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, TestHome() + "|" + TestHome() + "/.config|unset|unset|unset\n");
  struct stat st {};
  ASSERT_EQ(::stat(TestHome().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// The runner's home is the test binary's environment: start the binary again with a home
// whose config.toml, ssh_config and agent would each break tether if read, and the same
// end-to-end tests must still pass.
TEST(TestBedEnvironment, AHostileHomeOfTheRunnerChangesNothing) {
  TempDir hostile;
  ASSERT_TRUE(WriteFile(hostile.File(".tether.toml"), "this is [not toml\n").ok());
  std::filesystem::create_directories(hostile.File(".config/tether"));
  std::filesystem::create_directories(hostile.File(".ssh"));
  ASSERT_TRUE(WriteFile(hostile.File(".config/tether/config.toml"),
                        "[settings]\nkeepalive_interval_s = \"never\"\n")
                  .ok());
  ASSERT_TRUE(
      WriteFile(hostile.File(".ssh/config"), "Host *\n  Port 1\n  HostName 192.0.2.1\n").ok());
  char self[4096] = {};
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  Env env = {{"HOME", hostile.path()},
             {"XDG_CONFIG_HOME", hostile.File(".config")},
             {"TETHER_CONFIG", hostile.File(".tether.toml")},
             {"SSH_AUTH_SOCK", hostile.File("no-agent.sock")},
             {"http_proxy", "http://127.0.0.1:1"},
             {"ALL_PROXY", "socks5://127.0.0.1:1"}};
  CommandResult r = RunCommand({std::string(self, static_cast<size_t>(n)),
                                "--gtest_filter=LocalForwardTest.DownloadArrivesByteIdentical:"
                                "ExecTest.ExitCodesAndSignalsPassThrough"},
                               env, 120s);
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_NE(r.out.find("[  PASSED  ] 2 tests"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tether::testing
