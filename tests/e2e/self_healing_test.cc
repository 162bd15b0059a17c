// End-to-end: the link breaks and comes back; tether notices, reconnects, and its local
// listeners never close.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "e2e/netbed.h"
#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

nlohmann::json HostStatus(const CommandResult& r) {
  auto json = nlohmann::json::parse(r.out, nullptr, false);
  if (!json.is_object() || json["hosts"].empty()) return {};
  return json["hosts"][0];
}

using SelfHealingTest = TetherTest;

TEST_F(SelfHealingTest, ReconnectsWhenTheServerDropsTheConnection) {
  HttpServer http;
  uint16_t local = UpWithForward(http.port());
  ASSERT_TRUE(HttpGet(local).ok());
  sshd_.DropConnections();
  // The listener stays open throughout, and the forward serves again.
  ASSERT_TRUE(WaitFor([&] { return HttpGet(local, "/", seconds(5)).ok(); }, seconds(15)));
  ASSERT_TRUE(WaitFor(
      [&] {
        return HostStatus(Tether({"status", "--json"}))["reconnects"] == 1;
      },
      seconds(5)))
      << Tether({"status", "--json"}).out;
  auto host = HostStatus(Tether({"status", "--json"}));
  EXPECT_EQ(host["state"], "up");
  EXPECT_FALSE(host["last_error"].get<std::string>().empty());
}

// A server whose shell takes seconds to start (a conda or pyenv init in ~/.bashrc; here
// BASH_ENV, which bash reads before every command sshd runs): a reconnect runs no command,
// so the forwards serve again as soon as the login is done.
class SlowShellTest : public TetherTest {
 protected:
  void SetUp() override {
    slow_rc_ = scratch_.File("slow_rc.sh");
    ASSERT_TRUE(WriteFile(slow_rc_, "sleep 3\n", 0644).ok());
    sshd_options_.extra_config = {"SetEnv BASH_ENV=" + slow_rc_};
    TetherTest::SetUp();
  }
  std::string slow_rc_;
};

TEST_F(SlowShellTest, AReconnectDoesNotWaitForTheServersShell) {
  HttpServer http;
  uint16_t local = UpWithForward(http.port());
  ASSERT_TRUE(HttpGet(local).ok());
  // The shell really is slow: a command takes its 3 s.
  auto t0 = std::chrono::steady_clock::now();
  CommandResult slow = Tether({"exec", "testhost", "true"}, seconds(90));
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(slow.ok()) << slow.Describe();
  ASSERT_GE(took, seconds(3));

  const auto system_before = HostStatus(Tether({"status", "--json"}))["remote_system"];
  sshd_.DropConnections();
  auto dropped = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor(
      [&] {
        return HostStatus(Tether({"status", "--json"}))["reconnects"] == 1;
      },
      seconds(10)));
  ASSERT_TRUE(HttpGet(local, "/", seconds(10)).ok());
  auto serving =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - dropped);
  std::cerr << "served again " << serving.count() << " ms after the drop\n";
  EXPECT_LT(serving, milliseconds(2500)) << "the reconnect waited for the server's shell";
  // What the first login learnt of the server is kept.
  EXPECT_EQ(HostStatus(Tether({"status", "--json"}))["remote_system"], system_before);
}

TEST_F(SelfHealingTest, AConnectionMadeDuringTheOutageWaitsAndIsServed) {
  HttpServer http;
  uint16_t local = UpWithForward(http.port());
  sshd_.Stop();  // every session and the listener: a server reboot
  ASSERT_TRUE(WaitFor(
      [&] {
        return HostStatus(Tether({"status", "--json"}))["state"] == "reconnecting";
      },
      seconds(10)));
  // The connection is made, and its request sent, while sshd is down (no sleep: the order
  // is the code's); then the server comes back and the held connection is served.
  auto conn = ConnectTcp(local);
  ASSERT_TRUE(conn.ok()) << "the local listener closed during the outage: "
                         << conn.error().ToString();
  ASSERT_TRUE(
      SendAll(conn->get(), "GET /during HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok());
  ASSERT_EQ(HostStatus(Tether({"status", "--json"}))["state"], "reconnecting");
  Status restarted = sshd_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.error().ToString();
  auto answer = ReceiveAll(conn->get(), seconds(40));
  ASSERT_TRUE(answer.ok()) << answer.error().ToString();
  EXPECT_EQ(answer->rfind("HTTP/1.1 200", 0), 0u) << *answer;
  EXPECT_EQ(http.request_lines().back(), "GET /during HTTP/1.1");
}

TEST_F(SelfHealingTest, AnIdleLinkReportsItsRoundTripTime) {
  HttpServer http;
  UpWithForward(http.port());
  // The first keepalive goes out after a quiet interval (2 s); its answer gives the RTT.
  ASSERT_TRUE(WaitFor(
      [&] {
        return HostStatus(Tether({"status", "--json"}))["rtt_ms"].is_number();
      },
      seconds(8)))
      << Tether({"status", "--json"}).out;
  EXPECT_LT(HostStatus(Tether({"status", "--json"}))["rtt_ms"].get<int>(), 1000);
}

// A dead Wi-Fi: packets vanish, nothing says the link is gone. Only keepalives notice.
TEST(SelfHealingNetTest, NoticesABlackholedLinkWithinSevenSecondsAndServesAgainAfter) {
  auto net = LaptopServer::Create();
  if (!net.ok()) GTEST_SKIP() << net.error().ToString();
  ServerSshd sshd;
  Status started = sshd.Start((*net)->server, (*net)->server_ip);
  ASSERT_TRUE(started.ok()) << started.error().ToString();
  auto http = (*net)->server.MakeServer<HttpServer>("through the link\n");
  ASSERT_TRUE(http.ok()) << http.error().ToString();
  TempDir state;
  uint16_t local = 18080;  // the laptop namespace's own port space is empty
  CommandResult up = (*net)->laptop.RunTether(
      state.path(), {"-F", sshd.config_path(), "-v", "up", "testhost", "-L",
                     std::to_string(local) + ":127.0.0.1:" + std::to_string((*http)->port())});
  ASSERT_TRUE(up.ok()) << up.Describe();
  auto status = [&] {
    return HostStatus((*net)->laptop.RunTether(state.path(), {"status", "--json"}));
  };
  auto get = [&](milliseconds timeout) {
    Result<HttpResponse> r = MakeError("test", "not run");
    Status s = (*net)->laptop.RunIn([&] { r = HttpGet(local, "/", timeout); });
    return s.ok() && r.ok() && r->body == "through the link\n";
  };
  ASSERT_TRUE(get(seconds(5)));

  ASSERT_TRUE((*net)->link.Blackhole(true).ok());
  auto cut = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return status()["state"] != "up"; }, seconds(12))) << status().dump();
  auto noticed = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - cut);
  std::cerr << "dead link noticed after " << noticed.count() << " ms\n";
  // 6 s with the defaults (3 keepalives 2 s apart), plus up to a second for the status polls
  // (each a tether process in the namespace) that see it.
  EXPECT_LE(noticed.count(), 7000);

  ASSERT_TRUE((*net)->link.Blackhole(false).ok());
  auto restored = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return get(seconds(3)); }, seconds(40))) << status().dump();
  auto serving =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - restored);
  std::cerr << "forward served again " << serving.count() << " ms after the link returned\n";
  EXPECT_EQ(status()["reconnects"], 1);
  StopAllTethers(state.path());
}

using BusyServerSlowTest = TetherTest;

TEST_F(BusyServerSlowTest, ASilentSshdWhoseTcpStillAcknowledgesKeepsTheLink) {
  // sshd's session processes stopped for 10 s: its kernel keeps acknowledging our
  // keepalives, sshd answers none. Past the keepalive's 6 s that is a busy server, not a
  // dead path: the link, and a stream on it, must live through it.
  EchoServer echo;
  uint16_t local = UpWithForward(echo.port());
  auto conn = ConnectTcp(local);
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  ASSERT_TRUE(SendAll(conn->get(), "before\n").ok());
  auto before = ReceiveUntil(conn->get(), "\n", seconds(10));
  ASSERT_TRUE(before.ok() && *before == "before\n");
  std::vector<pid_t> session = ProcessDescendants(sshd_.pid());
  ASSERT_FALSE(session.empty());
  for (pid_t p : session) ::kill(p, SIGSTOP);
  std::this_thread::sleep_for(seconds(10));
  for (pid_t p : session) ::kill(p, SIGCONT);
  ASSERT_TRUE(SendAll(conn->get(), "after\n").ok());
  auto after = ReceiveUntil(conn->get(), "\n", seconds(10));
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_EQ(*after, "after\n");
  auto host = HostStatus(Tether({"status", "--json"}));
  EXPECT_EQ(host["reconnects"], 0) << host.dump(2);
  EXPECT_EQ(host["state"], "up");
}

}  // namespace
}  // namespace tether::testing
