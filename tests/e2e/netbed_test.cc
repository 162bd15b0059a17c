// Tests of the emulated network itself, with stock OpenSSH and plain sockets: if these pass, a
// network e2e failure of tether is tether's, not the bed's. Needs root; skips without it.
#include "e2e/netbed.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace tether::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

long long MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The poll events on `fd` within `timeout` (0: nothing happened).
short PollIn(int fd, std::chrono::milliseconds timeout) {
  pollfd p = {fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return 0;
  return p.revents;
}

int SocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

// Reads exactly `n` bytes within `timeout`.
Result<std::string> ReadExactly(int fd, size_t n, std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  while (out.size() < n && Clock::now() < deadline) {  // bounded by the deadline
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (PollIn(fd, std::max(left, 1ms)) == 0) continue;
    char buf[4096];
    ssize_t r = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (r <= 0) return ErrnoError("read", "recv", r == 0 ? 0 : errno);
    out.append(buf, static_cast<size_t>(r));
  }
  if (out.size() < n) return MakeError("read", "timed out after " + std::to_string(out.size()));
  return out;
}

class NetBedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto net = LaptopServer::Create();
    if (!net.ok()) GTEST_SKIP() << "no emulated network here: " << net.error().ToString();
    net_ = std::move(*net);
  }
  void TearDown() override {
    if (HasFailure() && sshd_.running()) std::cerr << "sshd log (tail):\n" << sshd_.LogTail();
  }

  void StartSshd(const ServerSshdOptions& options = {}) {
    Status s = sshd_.Start(net_->server, net_->server_ip, options);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }
  // `ssh -F CONFIG testhost ARGS...` from the laptop.
  CommandResult Ssh(const std::string& config, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ssh", "-F", config, "testhost"};
    argv.insert(argv.end(), args.begin(), args.end());
    return net_->laptop.Run(argv, {}, 30s);
  }

  // Declared first: destroyed last, after the processes that run inside it.
  std::unique_ptr<LaptopServer> net_;
  ServerSshd sshd_;
};

TEST_F(NetBedTest, LaptopReachesTheServersSshdOverTheLink) {
  StartSshd();
  CommandResult r = Ssh(sshd_.config_path(), {"echo", "over-the-link"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "over-the-link\n");
  // sshd saw the laptop's address: the connection crossed the veth pair.
  EXPECT_NE(sshd_.LogTail().find("from " + net_->laptop_ip), std::string::npos) << sshd_.LogTail();
}

TEST_F(NetBedTest, NamespacesHaveRaisedTcpBuffersAndTheLinkIsOnlyInside) {
  for (const NetNs* ns : {&net_->laptop, &net_->server}) {
    CommandResult r =
        ns->Run({"cat", "/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"});
    ASSERT_TRUE(r.ok()) << r.Describe();
    EXPECT_EQ(r.out, "4096\t131072\t67108864\n4096\t16384\t67108864\n");
  }
  // The link exists only inside the two namespaces. (No probe from the machine's own
  // namespace: 10.233.x.x is not local there, the default route would carry it off the
  // machine, and on this one something out there accepts it.)
  CommandResult links = RunCommand({"ip", "-o", "link"}, {}, 10s);
  EXPECT_EQ(links.out.find(net_->link.a_ifname()), std::string::npos) << links.out;
}

TEST_F(NetBedTest, BlackholeMakesConnectTimeOutAndLiftingItRestoresIt) {
  auto listener = ListenTcpIn(net_->server, net_->server_ip, 9000);
  ASSERT_TRUE(listener.ok()) << listener.error().ToString();
  ASSERT_TRUE(net_->laptop.ConnectTcp(net_->server_ip, 9000, 2s).ok());

  ASSERT_TRUE(net_->link.Blackhole(true).ok());
  EXPECT_TRUE(net_->link.blackholed());
  auto start = Clock::now();
  auto blocked = net_->laptop.ConnectTcp(net_->server_ip, 9000, 2s);
  ASSERT_FALSE(blocked.ok());
  // Silence, not a refusal: the SYN vanished and the connect ran into its timeout.
  EXPECT_NE(blocked.error().message.find("timed out"), std::string::npos)
      << blocked.error().ToString();
  EXPECT_GE(MsSince(start), 1900);

  ASSERT_TRUE(net_->link.Blackhole(false).ok());
  auto again = net_->laptop.ConnectTcp(net_->server_ip, 9000, 2s);
  EXPECT_TRUE(again.ok()) << again.error().ToString();
}

TEST_F(NetBedTest, BlackholeSilencesAnOpenConnectionWithoutResetAndItResumesAfter) {
  auto listener = ListenTcpIn(net_->server, net_->server_ip, 9001);
  ASSERT_TRUE(listener.ok()) << listener.error().ToString();
  auto laptop_end = net_->laptop.ConnectTcp(net_->server_ip, 9001, 2s);
  ASSERT_TRUE(laptop_end.ok()) << laptop_end.error().ToString();
  auto server_end = AcceptTcp(listener->get(), 2s);
  ASSERT_TRUE(server_end.ok()) << server_end.error().ToString();

  ASSERT_TRUE(net_->link.Blackhole(true).ok());
  ASSERT_EQ(::send(laptop_end->get(), "ping", 4, MSG_NOSIGNAL), 4);
  ASSERT_EQ(::send(server_end->get(), "pong", 4, MSG_NOSIGNAL), 4);
  // Nothing arrives and nothing fails: no RST, no error, no hang-up on either side.
  EXPECT_EQ(PollIn(server_end->get(), 1500ms), 0);
  EXPECT_EQ(PollIn(laptop_end->get(), 10ms), 0);
  EXPECT_EQ(SocketError(laptop_end->get()), 0);
  EXPECT_EQ(SocketError(server_end->get()), 0);

  ASSERT_TRUE(net_->link.Blackhole(false).ok());
  // TCP's retransmission (backed off to a few seconds at most by now) delivers both.
  auto at_server = ReadExactly(server_end->get(), 4, 15s);
  auto at_laptop = ReadExactly(laptop_end->get(), 4, 15s);
  ASSERT_TRUE(at_server.ok()) << at_server.error().ToString();
  ASSERT_TRUE(at_laptop.ok()) << at_laptop.error().ToString();
  EXPECT_EQ(*at_server, "ping");
  EXPECT_EQ(*at_laptop, "pong");
}

TEST_F(NetBedTest, StopListenerKeepsSessionsAndRestartAcceptsAgain) {
  StartSshd();
  TempDir logs;
  auto session = net_->laptop.Spawn({"ssh", "-F", sshd_.config_path(), "testhost", "sleep", "60"},
                                    logs.File("ssh.log"));
  ASSERT_TRUE(session.ok()) << session.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return !ProcessDescendants(sshd_.pid()).empty(); }, 10s));

  sshd_.StopListener();
  EXPECT_FALSE(Ssh(sshd_.config_path(), {"true"}).ok());
  EXPECT_TRUE(session->Running()) << "the session died with the listener";

  ASSERT_TRUE(sshd_.Restart().ok());  // also ends the old session
  EXPECT_TRUE(session->Wait(10s).has_value()) << "Restart() left the old session running";
  CommandResult r = Ssh(sshd_.config_path(), {"true"});
  EXPECT_TRUE(r.ok()) << r.Describe();

  sshd_.Kill();
  EXPECT_FALSE(sshd_.running());
  EXPECT_FALSE(Ssh(sshd_.config_path(), {"true"}).ok());
}

TEST_F(NetBedTest, DropConnectionsEndsSessionsButKeepsTheListener) {
  StartSshd();
  TempDir logs;
  auto session = net_->laptop.Spawn({"ssh", "-F", sshd_.config_path(), "testhost", "sleep", "60"},
                                    logs.File("ssh.log"));
  ASSERT_TRUE(session.ok()) << session.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return !ProcessDescendants(sshd_.pid()).empty(); }, 10s));
  sshd_.DropConnections();
  EXPECT_TRUE(session->Wait(10s).has_value()) << "the session outlived DropConnections()";
  EXPECT_TRUE(sshd_.running());
  CommandResult r = Ssh(sshd_.config_path(), {"true"});
  EXPECT_TRUE(r.ok()) << r.Describe();
}

TEST(NetBed, NothingIsLeftAfterTheBedIsDestroyed) {
  std::vector<std::string> names;
  pid_t sshd_pid = 0;
  pid_t stray_pid = 0;
  {
    auto net = LaptopServer::Create();
    if (!net.ok()) GTEST_SKIP() << "no emulated network here: " << net.error().ToString();
    names = {(*net)->laptop.name(), (*net)->server.name()};
    for (const auto& n : names) EXPECT_TRUE(Contains(ListNetNs(), n)) << n;
    ServerSshd sshd;
    ASSERT_TRUE(sshd.Start((*net)->server, (*net)->server_ip).ok());
    sshd_pid = sshd.pid();
    // A process that is no child of ours (as a daemon would be): only `ip netns pids` finds it.
    CommandResult r =
        (*net)->laptop.Run({"sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!"}, {}, 10s);
    ASSERT_TRUE(r.ok()) << r.Describe();
    stray_pid = static_cast<pid_t>(std::atol(r.out.c_str()));
    ASSERT_GT(stray_pid, 1);
    EXPECT_TRUE(ProcessAlive(stray_pid));
    auto pids = (*net)->laptop.Pids();
    EXPECT_NE(std::find(pids.begin(), pids.end(), stray_pid), pids.end());
  }
  for (const auto& n : names) EXPECT_FALSE(Contains(ListNetNs(), n)) << n << " was left";
  EXPECT_FALSE(ProcessAlive(sshd_pid));
  EXPECT_FALSE(ProcessAlive(stray_pid));
}

TEST(NetBed, CreateRemovesTheNamespacesOfADeadRun) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  // A PID that belonged to a process that is gone: a child that exited and was reaped.
  pid_t dead = ::fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) ::_exit(0);
  int status = 0;
  ASSERT_EQ(::waitpid(dead, &status, 0), dead);
  const std::string stale = "tth-" + std::to_string(dead) + "-0";
  ASSERT_TRUE(RunCommand({"ip", "netns", "add", stale}, {}, 10s).ok());
  CommandResult r = RunCommand(
      InNetNs(stale, {"sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $!"}), {}, 10s);
  ASSERT_TRUE(r.ok()) << r.Describe();
  pid_t left_behind = static_cast<pid_t>(std::atol(r.out.c_str()));
  ASSERT_TRUE(ProcessAlive(left_behind));

  auto ns = NetNs::Create();
  ASSERT_TRUE(ns.ok()) << ns.error().ToString();
  EXPECT_FALSE(Contains(ListNetNs(), stale));
  EXPECT_TRUE(Contains(ListNetNs(), ns->name())) << "a live namespace was removed";
  EXPECT_FALSE(ProcessAlive(left_behind));
  if (Contains(ListNetNs(), stale)) (void)RunCommand({"ip", "netns", "del", stale}, {}, 10s);
}

TEST_F(NetBedTest, TetherRunsInTheLaptopNamespaceAndForwardsToTheServersLoopback) {
  StartSshd();
  auto http = net_->server.MakeServer<HttpServer>("served inside the server namespace\n");
  ASSERT_TRUE(http.ok()) << http.error().ToString();
  TempDir state;
  const uint16_t local = 18080;  // the laptop namespace's own port space: nothing else there
  CommandResult up = net_->laptop.RunTether(
      state.path(), {"-F", sshd_.config_path(), "up", "testhost", "-L",
                     std::to_string(local) + ":127.0.0.1:" + std::to_string((*http)->port())});
  ASSERT_TRUE(up.ok()) << up.Describe();
  Result<HttpResponse> got = MakeError("http", "not run");
  ASSERT_TRUE(net_->laptop.RunIn([&] { got = HttpGet(local, "/", 10s); }).ok());
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->body, "served inside the server namespace\n");
  // The daemon lives in the laptop namespace.
  auto pid_text = ReadFile(state.File("testhost.pid"));
  ASSERT_TRUE(pid_text.ok());
  auto pids = net_->laptop.Pids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), std::atoi(pid_text->c_str())), pids.end());
  StopAllTethers(state.path());
}

// ---------------------------------------------------------------------------------------
// The delay relay

TEST(DelayRelay, AddsTheDelayToEveryRoundTrip) {
  EchoServer echo;
  ASSERT_NE(echo.port(), 0);
  DelayRelay relay;
  DelayRelayOptions options;
  options.connect_port = echo.port();
  options.delay = 100ms;
  Status s = relay.Start(options);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  auto fd = ConnectTcp(relay.port());
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  long long fastest = 1'000'000;
  long long slowest = 0;
  for (int i = 0; i < 5; ++i) {
    auto start = Clock::now();
    ASSERT_EQ(::send(fd->get(), "x", 1, MSG_NOSIGNAL), 1);
    auto back = ReadExactly(fd->get(), 1, 5s);
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    fastest = std::min(fastest, MsSince(start));
    slowest = std::max(slowest, MsSince(start));
  }
  // 2 x 100 ms is a floor the relay enforces; the ceiling only guards against nonsense.
  EXPECT_GE(fastest, 199);
  EXPECT_LT(slowest, 1000);
}

TEST(DelayRelay, Relays64MiBByteIdenticalBothWaysWithHalfClose) {
  constexpr uint64_t kBytes = uint64_t{64} << 20;
  SinkServer sink;
  SourceServer source(kBytes, /*seed=*/7);
  DelayRelay to_sink, from_source;
  DelayRelayOptions options;
  options.delay = 20ms;
  options.connect_port = sink.port();
  ASSERT_TRUE(to_sink.Start(options).ok()) << to_sink.LogTail();
  options.connect_port = source.port();
  ASSERT_TRUE(from_source.Start(options).ok()) << from_source.LogTail();

  // SendToSink shuts down its sending side and then needs the sink's verdict back: the
  // relay passed the FIN on after the data and kept the other direction open.
  auto sent = SendToSink(to_sink.port(), kBytes, /*seed=*/3, 60s);
  ASSERT_TRUE(sent.ok()) << sent.error().ToString() << "\n" << to_sink.LogTail();
  EXPECT_EQ(sent->bytes, kBytes);
  auto got = ReadFromSource(from_source.port(), 60s);
  ASSERT_TRUE(got.ok()) << got.error().ToString() << "\n" << from_source.LogTail();
  EXPECT_EQ(got->bytes, kBytes);
  EXPECT_EQ(got->sha256_hex, source.expected_sha256());
}

TEST(DelayRelay, RateLimitHoldsATransferToTheLinkSpeed) {
  constexpr uint64_t kBytes = uint64_t{4} << 20;  // 33.6 Mbit: 0.67 s at 50 Mbit/s
  SinkServer sink;
  DelayRelay relay;
  DelayRelayOptions options;
  options.connect_port = sink.port();
  options.delay = 5ms;
  options.rate_mbit = 50;
  ASSERT_TRUE(relay.Start(options).ok()) << relay.LogTail();
  auto start = Clock::now();
  auto sent = SendToSink(relay.port(), kBytes, /*seed=*/5, 30s);
  ASSERT_TRUE(sent.ok()) << sent.error().ToString();
  EXPECT_GE(MsSince(start), 600);
  EXPECT_LT(MsSince(start), 10'000);
}

TEST(DelayRelay, PassesAResetOnAfterTheDelay) {
  // A server that accepts and resets at once (SO_LINGER 0).
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  DelayRelay relay;
  DelayRelayOptions options;
  options.connect_port = ntohs(addr.sin_port);
  options.delay = 100ms;
  ASSERT_TRUE(relay.Start(options).ok()) << relay.LogTail();

  auto start = Clock::now();
  auto client = ConnectTcp(relay.port());
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  auto server_end = AcceptTcp(listener.get(), 5s);
  ASSERT_TRUE(server_end.ok()) << server_end.error().ToString();
  linger lg{1, 0};
  ::setsockopt(server_end->get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  server_end->Reset();
  ASSERT_NE(PollIn(client->get(), 5s), 0);
  char c = 0;
  EXPECT_EQ(::recv(client->get(), &c, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_GE(MsSince(start), 99);
}

TEST(DelayRelay, ARefusedConnectionReachesTheClientAsADelayedReset) {
  DelayRelay relay;
  DelayRelayOptions options;
  options.connect_port = FreeTcpPort();  // nothing listens there
  options.delay = 100ms;
  ASSERT_TRUE(relay.Start(options).ok()) << relay.LogTail();
  auto start = Clock::now();
  auto client = ConnectTcp(relay.port());  // the relay itself accepts at once
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  ASSERT_NE(PollIn(client->get(), 5s), 0);
  char c = 0;
  EXPECT_EQ(::recv(client->get(), &c, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_GE(MsSince(start), 99);
}

TEST(DelayRelay, IdleConnectionsCostNoCpu) {
  EchoServer echo;
  DelayRelay relay;
  DelayRelayOptions options;
  options.connect_port = echo.port();
  options.delay = 50ms;
  ASSERT_TRUE(relay.Start(options).ok()) << relay.LogTail();
  std::vector<UniqueFd> conns;
  for (int i = 0; i < 10; ++i) {
    auto fd = ConnectTcp(relay.port());
    ASSERT_TRUE(fd.ok()) << fd.error().ToString();
    // Half-closed ones too: a socket whose peer said FIN must not wake the loop forever.
    if (i % 2 == 0) ::shutdown(fd->get(), SHUT_WR);
    conns.push_back(std::move(*fd));
  }
  std::this_thread::sleep_for(300ms);  // the delayed FINs have gone through
  auto before = ProcessCpuSeconds(relay.pid());
  ASSERT_TRUE(before.ok()) << before.error().ToString();
  std::this_thread::sleep_for(1s);
  auto after = ProcessCpuSeconds(relay.pid());
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_LE(*after - *before, 0.05) << "the relay spins while idle (CPU seconds in 1 s)";
  EXPECT_TRUE(relay.running());
}

TEST_F(NetBedTest, SshThroughADelayRelayInTheServerNamespacePaysTheRoundTrips) {
  StartSshd();
  DelayRelay relay;
  DelayRelayOptions options;
  options.listen_ip = net_->server_ip;
  options.listen_port = 2222;
  options.connect_port = sshd_.port();  // sshd's 127.0.0.1 listener in the same namespace
  options.delay = 50ms;
  Status s = relay.Start(options, &net_->server);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  ASSERT_TRUE(sshd_.AddKnownHost(net_->server_ip, relay.port()).ok());
  TempDir dir;
  ClientConfigOptions client;
  client.overrides["Port"] = std::to_string(relay.port());
  ASSERT_TRUE(sshd_.WriteClientConfig(dir.File("ssh_config"), client).ok());

  auto start = Clock::now();
  CommandResult r = Ssh(dir.File("ssh_config"), {"true"});
  ASSERT_TRUE(r.ok()) << r.Describe() << "\n" << relay.LogTail();
  // Banner, key exchange, auth, channel and exec need well over 4 round trips of 100 ms.
  EXPECT_GE(MsSince(start), 400);
  // The relay on the server side keeps the laptop's own TCP connection on the link, so a
  // black hole there still silences it.
  ASSERT_TRUE(net_->link.Blackhole(true).ok());
  auto blocked = net_->laptop.ConnectTcp(net_->server_ip, relay.port(), 1s);
  EXPECT_FALSE(blocked.ok());
}

}  // namespace
}  // namespace tether::testing
