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

TEST_F(NetBedTest, SshOverTheIpDelayPaysTheRoundTrips) {
  if (std::string(NfqDelayBinary()).empty()) GTEST_SKIP() << "nfq_delay was not built";
  StartSshd();
  ASSERT_TRUE(net_->AddIpDelay(50ms, 50ms).ok());
  auto start = Clock::now();
  CommandResult r = Ssh(sshd_.config_path(), {"true"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  // Banner, key exchange, auth, channel and exec need well over 4 round trips of 100 ms.
  EXPECT_GE(MsSince(start), 400);
  // The delay is on the link itself, so a black hole there still silences it.
  ASSERT_TRUE(net_->link.Blackhole(true).ok());
  auto blocked = net_->laptop.ConnectTcp(net_->server_ip, sshd_.port(), 1s);
  EXPECT_FALSE(blocked.ok());
}

}  // namespace
}  // namespace tether::testing
