// End-to-end: -R forwards through a real sshd, and forwards added to and cancelled from a
// running daemon. The test's sshd runs on this machine, so "the server's loopback" is ours.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "e2e/tether_fixture.h"
#include "net/socket.h"

namespace tether::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class RemoteForwardTest : public TetherTest {
 protected:
  nlohmann::json Host() {
    CommandResult r = Tether({"status", "--json"});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_object() || j["hosts"].empty()) return nlohmann::json::object();
    return j["hosts"][0];
  }
  // The forward listening at `listen` ("127.0.0.1:8000", "server localhost:9000").
  nlohmann::json Forward(const std::string& listen) {
    for (const auto& f : Host().value("forwards", nlohmann::json::array())) {
      if (f.value("listen", "") == listen) return f;
    }
    return nlohmann::json::object();
  }
  static std::string Spec(uint16_t listen, uint16_t target) {
    return std::to_string(listen) + ":127.0.0.1:" + std::to_string(target);
  }
};

TEST_F(RemoteForwardTest, AConnectionOnTheServerReachesTheLaptopsService) {
  HttpServer laptop_service("served by the laptop\n");
  uint16_t server_port = FreeTcpPort();
  CommandResult up =
      Tether({"-v", "up", "testhost", "-R", Spec(server_port, laptop_service.port())});
  ASSERT_TRUE(up.ok()) << up.Describe();
  EXPECT_NE(up.out.find("-R server localhost:" + std::to_string(server_port)), std::string::npos)
      << up.out;
  EXPECT_NE(up.out.find("(listening)"), std::string::npos) << up.out;

  auto response = HttpGet(server_port);
  ASSERT_TRUE(response.ok()) << response.error().ToString();
  EXPECT_EQ(response->body, "served by the laptop\n");
  nlohmann::json fwd;
  ASSERT_TRUE(WaitFor(
      [&] {
        fwd = Forward("server localhost:" + std::to_string(server_port));
        return fwd.value("total", 0) == 1 && fwd.value("live", 1) == 0;
      },
      seconds(5)))
      << fwd.dump();
  EXPECT_EQ(fwd["kind"], "remote");
  EXPECT_EQ(fwd["state"], "listening");
  EXPECT_GT(fwd["bytes_in"].get<uint64_t>(), 0u);   // the request, from the server
  EXPECT_GT(fwd["bytes_out"].get<uint64_t>(), 0u);  // the answer, to the server
}

TEST_F(RemoteForwardTest, MovesDataByteIdenticalBothWays) {
  SinkServer sink;
  uint16_t server_port = FreeTcpPort();
  ASSERT_TRUE(Tether({"up", "testhost", "-R", Spec(server_port, sink.port())}).ok());
  auto sent = SendToSink(server_port, 32u << 20, 7);
  ASSERT_TRUE(sent.ok()) << sent.error().ToString();
  EXPECT_EQ(sent->bytes, 32u << 20);

  SourceServer source(16u << 20, 9);
  uint16_t source_port = FreeTcpPort();
  ASSERT_TRUE(Tether({"forward", "testhost", "-R", Spec(source_port, source.port())}).ok());
  auto got = ReadFromSource(source_port);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->bytes, 16u << 20);
  EXPECT_EQ(got->sha256_hex, source.expected_sha256());
}

TEST_F(RemoteForwardTest, ATargetThatRefusesEndsThatConnectionAndCountsAsFailed) {
  uint16_t closed = FreeTcpPort();
  uint16_t server_port = FreeTcpPort();
  ASSERT_TRUE(Tether({"up", "testhost", "-R", Spec(server_port, closed)}).ok());
  auto fd = ConnectTcp(server_port);
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  auto rest = ReceiveAll(fd->get(), seconds(10));
  ASSERT_TRUE(rest.ok()) << "the server side was left hanging: " << rest.error().ToString();
  EXPECT_EQ(*rest, "");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Forward("server localhost:" + std::to_string(server_port)).value("failed", 0) == 1;
      },
      seconds(5)));
  // The daemon lives on and the same forward serves once its target listens.
  HttpServer later("now it answers\n", closed);
  ASSERT_TRUE(later.status().ok()) << later.status().error().ToString();
  auto response = HttpGet(server_port);
  ASSERT_TRUE(response.ok()) << response.error().ToString();
  EXPECT_EQ(response->body, "now it answers\n");
  EXPECT_EQ(Host()["reconnects"], 0);
}

TEST_F(RemoteForwardTest, RetriesWhileThePortIsTakenOnTheServerAndListensOnceItFrees) {
  HttpServer laptop_service;
  auto squatter = net::ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(squatter.ok());
  uint16_t taken = *net::LocalPort((*squatter)[0].get());
  // sshd binds "localhost" to ::1 as well, so take 127.0.0.1 and ask for exactly that.
  CommandResult up =
      Tether({"up", "testhost", "-R", "127.0.0.1:" + Spec(taken, laptop_service.port())});
  // The daemon runs and keeps asking; the user is told why it does not listen yet.
  EXPECT_NE(up.err.find("refused tcpip-forward"), std::string::npos) << up.Describe();
  nlohmann::json fwd = Forward("server 127.0.0.1:" + std::to_string(taken));
  EXPECT_EQ(fwd.value("state", ""), "retrying") << fwd.dump();
  EXPECT_NE(fwd.value("error", "").find("retrying in"), std::string::npos) << fwd.dump();

  squatter->clear();  // the stale listener goes away
  ASSERT_TRUE(WaitFor(
      [&] {
        return Forward("server 127.0.0.1:" + std::to_string(taken)).value("state", "") ==
               "listening";
      },
      seconds(15)))
      << Forward("server 127.0.0.1:" + std::to_string(taken)).dump();
  auto response = HttpGet(taken);
  ASSERT_TRUE(response.ok()) << response.error().ToString();
  EXPECT_EQ(Host()["reconnects"], 0);
}

TEST_F(RemoteForwardTest, IsRequestedAgainAfterTheServerRestarts) {
  HttpServer laptop_service;
  uint16_t server_port = FreeTcpPort();
  ASSERT_TRUE(
      Tether({"-v", "up", "testhost", "-R", Spec(server_port, laptop_service.port())}).ok());
  ASSERT_TRUE(HttpGet(server_port).ok());
  Status restarted = sshd_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.error().ToString();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto h = Host();
        return h.value("reconnects", 0) == 1 &&
               Forward("server localhost:" + std::to_string(server_port)).value("state", "") ==
                   "listening";
      },
      seconds(20)))
      << Host().dump();
  auto response = HttpGet(server_port);
  ASSERT_TRUE(response.ok()) << response.error().ToString();
  EXPECT_EQ(response->body, laptop_service.body());
}

TEST_F(RemoteForwardTest, AUnixSocketOnTheLaptopCanBeTheTarget) {
  std::string path = scratch_.File("laptop.sock");
  auto listener = net::ListenUnix(path);
  ASSERT_TRUE(listener.ok());
  uint16_t server_port = FreeTcpPort();
  ASSERT_TRUE(Tether({"up", "testhost", "-R", std::to_string(server_port) + ":" + path}).ok());
  auto client = ConnectTcp(server_port);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(SendAll(client->get(), "ping").ok());
  int conn = -1;
  for (int i = 0; i < 100 && conn < 0; ++i) {
    conn = ::accept((*listener).get(), nullptr, nullptr);
    if (conn < 0) ::usleep(50000);
  }
  ASSERT_GE(conn, 0);
  UniqueFd accepted(conn);
  (void)net::SetNonBlocking(conn, false);
  char buf[4] = {0};
  ASSERT_EQ(::recv(conn, buf, 4, MSG_WAITALL), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
}

TEST_F(RemoteForwardTest, ListeningOnAUnixSocketOnTheServerIsRefusedWithAReason) {
  CommandResult r = Tether({"forward", "testhost", "-R", "/tmp/x.sock:127.0.0.1:80"});
  EXPECT_FALSE(r.ok());  // not up yet
  HttpServer http;
  ASSERT_TRUE(Tether({"up", "testhost", "-L", Spec(FreeTcpPort(), http.port())}).ok());
  r = Tether({"forward", "testhost", "-R", scratch_.File("x.sock") + ":127.0.0.1:80"});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find("unix socket on the server"), std::string::npos) << r.Describe();
}

// libssh has one reply slot for global requests: a tcpip-forward asked while a
// keepalive@openssh.com is in flight must still get its own answer. Probes every second
// on a quiet link, and forwards asked for at moments that fall all over that cycle.
TEST_F(RemoteForwardTest, ForwardsAskedWhileKeepalivesAreInFlightAllGetTheirOwnAnswer) {
  HttpServer laptop_service("mine\n");
  ASSERT_TRUE(Tether({"up", "testhost", "-o", "ServerAliveInterval=1", "-L",
                      Spec(FreeTcpPort(), laptop_service.port())})
                  .ok());
  // The keepalive cycle runs once one has been answered (it gives the RTT).
  ASSERT_TRUE(WaitFor([&] { return Host()["rtt_ms"].is_number(); }, seconds(10))) << Host().dump();
  std::vector<uint16_t> ports;
  for (int i = 0; i < 8; ++i) {
    ports.push_back(FreeTcpPort());
    CommandResult add =
        Tether({"forward", "testhost", "-R", Spec(ports.back(), laptop_service.port())});
    ASSERT_TRUE(add.ok()) << add.Describe();
    // Not a wait for something: the asks are spread over the keepalive's 1 s cycle on
    // purpose (130 ms, 260 ms, ... apart), so that some land while a probe is in flight.
    std::this_thread::sleep_for(milliseconds(130 * (i + 1)));
  }
  for (uint16_t port : ports) {
    EXPECT_EQ(Forward("server localhost:" + std::to_string(port)).value("state", ""), "listening");
    auto r = HttpGet(port);
    ASSERT_TRUE(r.ok()) << port << ": " << r.error().ToString();
    EXPECT_EQ(r->body, "mine\n");
  }
  EXPECT_EQ(Host()["state"], "up");
  EXPECT_EQ(Host()["reconnects"], 0);
}

// "Any port" (-R 0) asked while the connection brings many small packets: each forward
// listens where status says and reaches its own target, and every ask is answered. (libssh
// reads the chosen port from the last packet it handled; a small packet in the same read
// behind the answer lost it: "failed" with no reason, sshd listening for nobody.)
TEST_F(RemoteForwardTest, AnyPortForwardsAskedWhileSmallPacketsFlowListenWhereTheySay) {
  constexpr int kForwards = 10;
  std::vector<std::unique_ptr<HttpServer>> targets;
  for (int i = 0; i < kForwards; ++i)
    targets.push_back(std::make_unique<HttpServer>("target " + std::to_string(i) + "\n"));
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  // Commands on the server writing a byte at a time, each write a packet of its own,
  // for a bounded 12 s.
  // (One word for the server's shell, as ssh's command lines are.)
  const std::string chatter =
      "python3 -c 'import os, time\nend = time.time() + 12\n"
      "while time.time() < end:\n    os.write(1, b\"x\")\n    time.sleep(0.0002)\n'";
  std::vector<size_t> chattered(4, 0);  // before the threads: they write it until joined
  std::vector<std::thread> chatty;
  struct Joined {  // on every way out, an ASSERT's too
    std::vector<std::thread>& threads;
    void Join() {
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
    ~Joined() { Join(); }
  } joined{chatty};
  for (int i = 0; i < 4; ++i) {
    chatty.emplace_back([this, chatter, &chattered, i] {
      chattered[i] = Tether({"exec", "testhost", "--", chatter}, seconds(30)).out.size();
    });
  }
  std::this_thread::sleep_for(milliseconds(500));  // not a wait for something: the chatter starts
  for (int i = 0; i < kForwards; ++i) {
    CommandResult add =
        Tether({"forward", "testhost", "-R", "0:127.0.0.1:" + std::to_string(targets[i]->port())});
    EXPECT_TRUE(add.ok()) << i << ": " << add.Describe();
  }
  std::vector<uint16_t> ports;
  for (const auto& f : Host().value("forwards", nlohmann::json::array())) {
    if (f.value("kind", "") != "remote") continue;
    EXPECT_EQ(f.value("state", ""), "listening") << f.dump();
    const std::string listen = f.value("listen", "");
    const uint16_t port = static_cast<uint16_t>(std::stoi(listen.substr(listen.rfind(':') + 1)));
    const std::string target = f.value("target", "");
    auto r = HttpGet(port);
    ASSERT_TRUE(r.ok()) << listen << ": " << r.error().ToString();
    int which = -1;
    for (int i = 0; i < kForwards; ++i)
      if (target.find(":" + std::to_string(targets[i]->port())) != std::string::npos) which = i;
    ASSERT_GE(which, 0) << f.dump();
    EXPECT_EQ(r->body, "target " + std::to_string(which) + "\n") << f.dump();
    ports.push_back(port);
  }
  EXPECT_EQ(ports.size(), static_cast<size_t>(kForwards)) << Host().dump();
  joined.Join();
  for (size_t n : chattered) EXPECT_GT(n, 10000u) << "a command that was to chatter did not";
  EXPECT_EQ(Host()["reconnects"], 0);
  // One is cancelled by the port the server gave it, as with ssh -O cancel.
  ASSERT_FALSE(ports.empty());
  CommandResult cancel =
      Tether({"forward", "testhost", "--cancel", "-R " + std::to_string(ports[0])});
  EXPECT_TRUE(cancel.ok()) << cancel.Describe();
  EXPECT_FALSE(PortAccepts(ports[0])) << "the server still listens";
  EXPECT_EQ(Host()["forwards"].size(), static_cast<size_t>(kForwards - 1));
}

// "Any port" when many ports are taken on the server: a refused one is asked again with
// another, so each forward listens (on a port that was free). A third of the range is held
// here on 127.0.0.1, and the forwards ask for that address alone.
TEST_F(RemoteForwardTest, AnyPortTakenOnTheServerIsAskedAgainWithAnother) {
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_GE(limit.rlim_cur, 4000u) << "the hard descriptor limit is too low";
  std::vector<UniqueFd> held;
  for (int port = 61000; port <= 65535; ++port) {
    if (port % 3 != 0) continue;
    auto fds = net::ListenTcp("127.0.0.1", static_cast<uint16_t>(port));
    if (fds.ok()) held.push_back(std::move((*fds)[0]));
  }
  ASSERT_GT(held.size(), 1400u);
  // With 1 in 3 taken, twenty forwards all listening on a first try is a chance of 3 in
  // 10 000 (the retry is what this exercises), and one refused 12 times 1 in 25 000.
  constexpr int kForwards = 20;
  std::vector<std::unique_ptr<HttpServer>> targets;
  for (int i = 0; i < kForwards; ++i)
    targets.push_back(std::make_unique<HttpServer>("target " + std::to_string(i) + "\n"));
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  for (int i = 0; i < kForwards; ++i) {
    CommandResult add = Tether({"forward", "testhost", "-R",
                                "127.0.0.1:0:127.0.0.1:" + std::to_string(targets[i]->port())});
    EXPECT_TRUE(add.ok()) << i << ": " << add.Describe();
  }
  size_t listening = 0;
  for (const auto& f : Host().value("forwards", nlohmann::json::array())) {
    if (f.value("kind", "") != "remote") continue;
    EXPECT_EQ(f.value("state", ""), "listening") << f.dump();
    if (f.value("state", "") != "listening") continue;
    const std::string listen = f.value("listen", "");
    const int port = std::stoi(listen.substr(listen.rfind(':') + 1));
    EXPECT_NE(port % 3, 0) << "listening on a port held here: " << listen;
    auto r = HttpGet(static_cast<uint16_t>(port));
    ASSERT_TRUE(r.ok()) << listen << ": " << r.error().ToString();
    EXPECT_EQ(r->body.rfind("target ", 0), 0u) << r->body;
    ++listening;
  }
  EXPECT_EQ(listening, static_cast<size_t>(kForwards)) << Host().dump();
}

// --- forwards added to and removed from a running daemon

TEST_F(RemoteForwardTest, UpOnARunningHostAddsTheNewForwardsWithoutASecondConnection) {
  HttpServer http("one\n");
  uint16_t first = FreeTcpPort();
  ASSERT_TRUE(Tether({"up", "testhost", "-L", Spec(first, http.port())}).ok());
  int pid = Host()["pid"];
  uint16_t second = FreeTcpPort();
  uint16_t remote = FreeTcpPort();
  CommandResult again =
      Tether({"up", "testhost", "-L", Spec(second, http.port()), "-R", Spec(remote, http.port())});
  ASSERT_TRUE(again.ok()) << again.Describe();
  EXPECT_NE(again.out.find("already up"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("127.0.0.1:" + std::to_string(second)), std::string::npos) << again.out;
  EXPECT_EQ(Host()["pid"], pid);
  EXPECT_EQ(Host()["forwards"].size(), 3u);
  for (uint16_t port : {first, second, remote}) {
    auto r = HttpGet(port);
    ASSERT_TRUE(r.ok()) << port << ": " << r.error().ToString();
    EXPECT_EQ(r->body, "one\n");
  }
  // Asking again for what runs changes nothing.
  ASSERT_TRUE(Tether({"up", "testhost", "-L", Spec(second, http.port())}).ok());
  EXPECT_EQ(Host()["forwards"].size(), 3u);
}

TEST_F(RemoteForwardTest, ForwardAddsAndCancelRemovesWhileLiveStreamsCarryOn) {
  EchoServer echo;
  HttpServer http;
  ASSERT_TRUE(Tether({"up", "testhost", "-L", Spec(FreeTcpPort(), http.port())}).ok());
  uint16_t local = FreeTcpPort();
  uint16_t remote = FreeTcpPort();
  CommandResult add = Tether(
      {"forward", "testhost", "-L", Spec(local, echo.port()), "-R", Spec(remote, echo.port())});
  ASSERT_TRUE(add.ok()) << add.Describe();
  auto live = ConnectTcp(local);
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(SendAll(live->get(), "before ").ok());

  CommandResult cancel = Tether({"forward", "testhost", "--cancel", std::to_string(local),
                                 "--cancel", "-R " + std::to_string(remote)});
  ASSERT_TRUE(cancel.ok()) << cancel.Describe();
  EXPECT_NE(cancel.out.find("cancelled -L 127.0.0.1:" + std::to_string(local)), std::string::npos);
  EXPECT_FALSE(PortAccepts(local)) << "the listener is still open";
  EXPECT_FALSE(PortAccepts(remote)) << "the server still listens";
  EXPECT_EQ(Host()["forwards"].size(), 1u);

  // The stream that was live at the cancel carries on, as with ssh -O cancel.
  ASSERT_TRUE(SendAll(live->get(), "after").ok());
  ::shutdown(live->get(), SHUT_WR);
  auto echoed = ReceiveAll(live->get(), seconds(10));
  ASSERT_TRUE(echoed.ok()) << echoed.error().ToString();
  EXPECT_EQ(*echoed, "before after");

  // The ports can be forwarded again.
  ASSERT_TRUE(Tether({"forward", "testhost", "-L", Spec(local, http.port())}).ok());
  EXPECT_TRUE(HttpGet(local).ok());
}

TEST_F(RemoteForwardTest, BadForwardRequestsGetAnErrorAndChangeNothing) {
  HttpServer http;
  uint16_t local = FreeTcpPort();
  ASSERT_TRUE(Tether({"up", "testhost", "-L", Spec(local, http.port())}).ok());
  CommandResult r = Tether({"forward", "testhost", "-L", "99999:localhost:80"});
  EXPECT_FALSE(r.ok());
  r = Tether({"forward", "testhost", "-L", Spec(local, http.port() + 1)});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find("already forwards"), std::string::npos) << r.Describe();
  r = Tether({"forward", "testhost", "--cancel", "12"});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find("no forward listens"), std::string::npos) << r.Describe();
  auto busy = net::ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(busy.ok());
  uint16_t busy_port = *net::LocalPort((*busy)[0].get());
  r = Tether({"forward", "testhost", "-L", Spec(busy_port, http.port())});
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.err.find(std::to_string(busy_port)), std::string::npos) << r.Describe();
  EXPECT_EQ(Host()["forwards"].size(), 1u);
  EXPECT_TRUE(HttpGet(local).ok());
}

}  // namespace
}  // namespace tether::testing
