// End-to-end: the outages a laptop lives through, over the emulated network (netbed.h):
// a 20 s black hole, a crashed sshd (SIGKILL), a daemon frozen for a minute (SIGSTOP, as a
// sleeping laptop), and a minute of full-speed transfer over a 100 ms link that must not be
// mistaken for an outage. Each test prints its measured figures to stderr.
//
// Tests longer than 15 s are in suites named *Slow* (the sanitizer run skips -E Slow). Every
// test skips without root (LaptopServer::Create fails).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "e2e/netbed.h"

namespace tether::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The first host of `tether status --json`, or null.
nlohmann::json HostStatus(const CommandResult& r) {
  auto json = nlohmann::json::parse(r.out, nullptr, false);
  if (!json.is_object() || !json["hosts"].is_array() || json["hosts"].empty()) return {};
  return json["hosts"][0];
}

// The bound for "the forward serves again after the link returns" is 1 s + one RTT;
// a loaded 2-core machine gets this much more (a status poll, a process start, a scheduler
// slice).
constexpr milliseconds kServeAgainBound = 1000ms;
constexpr milliseconds kLoadedMachineSlack = 500ms;
// The laptop namespace's own port space is empty: a fixed port cannot collide.
constexpr uint16_t kLocalPort = 18080;
constexpr char kBody[] = "through the link\n";

// A laptop and a server namespace, sshd and an HTTP server in the server namespace, and
// tether in the laptop namespace forwarding kLocalPort to that HTTP server.
class OutageNetTest : public ::testing::Test {
 public:  // the free test helpers use these too
  void SetUp() override {
    auto net = LaptopServer::Create();
    if (!net.ok()) GTEST_SKIP() << net.error().ToString();
    net_ = std::move(*net);
    Status s = sshd_.Start(net_->server, net_->server_ip, sshd_options_);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    auto http = net_->server.MakeServer<HttpServer>(kBody);
    ASSERT_TRUE(http.ok()) << http.error().ToString();
    http_ = std::move(*http);
  }

  void TearDown() override {
    if (!net_) return;
    if (HasFailure()) {
      PrintDaemonLogTail(state_.path());
      std::cerr << "sshd log (tail):\n" << sshd_.LogTail();
    }
    StopAllTethers(state_.path());
    // Servers before the namespaces they live in; sshd before its namespace.
    sink_.reset();
    http_.reset();
    sshd_.Stop();
  }

  // `tether -F CONFIG up testhost -L kLocalPort:127.0.0.1:TARGET` in the laptop namespace.
  void Up(uint16_t target_port, const std::string& config = {}) {
    CommandResult up = net_->laptop.RunTether(
        state_.path(),
        {"-F", config.empty() ? sshd_.config_path() : config, "-v", "up", "testhost", "-L",
         std::to_string(kLocalPort) + ":127.0.0.1:" + std::to_string(target_port)},
        60s);
    ASSERT_TRUE(up.ok()) << up.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  }

  nlohmann::json Host() const {
    return HostStatus(net_->laptop.RunTether(state_.path(), {"status", "--json"}, 10s));
  }

  // One GET through the forward from the laptop namespace; true if the HTTP server answered.
  bool Get(milliseconds timeout, const std::string& path = "/") const {
    Result<HttpResponse> r = MakeError("test", "not run");
    Status s = net_->laptop.RunIn([&] { r = HttpGet(kLocalPort, path, timeout); });
    return s.ok() && r.ok() && r->status == 200 && r->body == kBody;
  }

  // A GET every 100 ms (each may wait up to `per_try` for a link that is coming back) until
  // one is served or `timeout` passes. Milliseconds from `since` until the answer that
  // succeeded arrived, or -1. One at a time: a GET that tether holds while the link is down
  // must be served as soon as it is back, or this waits out `per_try`.
  long long ServedAfter(Clock::time_point since, milliseconds timeout,
                        milliseconds per_try = 3000ms) const {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto tried = Clock::now();
      if (Get(per_try)) return MsSince(since);
      auto next = tried + 100ms;
      if (Clock::now() < next) std::this_thread::sleep_for(next - Clock::now());
    }
    return -1;
  }

  // True if the forward's local listener accepts a connection (from the laptop namespace).
  bool LocalPortAccepts() const { return net_->laptop.ConnectTcp("127.0.0.1", kLocalPort).ok(); }

  ServerSshdOptions sshd_options_;
  std::unique_ptr<LaptopServer> net_;
  ServerSshd sshd_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<SinkServer> sink_;
  TempDir state_;
};

using OutageTest = OutageNetTest;
using OutageSlowTest = OutageNetTest;

// ---------------------------------------------------------------------------------------
// A crash of sshd: SIGKILL to the listener and every session.

TEST_F(OutageTest, ReconnectsAndServesAfterSshdIsKilledWithSigkillAndStartedAgain) {
  Up(http_->port());
  ASSERT_TRUE(Get(5s));

  sshd_.Kill();
  auto killed = Clock::now();
  // The kernel closes a dead process's sockets: tether hears the end of the connection.
  ASSERT_TRUE(WaitFor([&] { return Host()["state"] != "up"; }, 10s, 100ms)) << Host().dump();
  long long noticed_ms = MsSince(killed);
  EXPECT_TRUE(LocalPortAccepts()) << "the local listener closed while sshd was down";

  std::this_thread::sleep_for(2s);  // down for a moment: a reconnect attempt or two fails
  Status restarted = sshd_.Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.error().ToString();
  auto back = Clock::now();
  long long serving_ms = ServedAfter(back, 20s);
  std::cerr << "sshd killed -9: tether noticed after " << noticed_ms
            << " ms; the forward served again " << serving_ms << " ms after sshd restarted\n";
  ASSERT_GE(serving_ms, 0) << Host().dump();
  // Not the backoff (0.5 s, 1 s, 2 s after 2 s of refused attempts): the reachability probe,
  // once a second while the link is down, finds sshd back and logs in on that connection.
  EXPECT_LE(serving_ms, (kServeAgainBound + kLoadedMachineSlack).count())
      << "a restarted sshd must be found by the next probe, not the next backoff step";
  auto host = Host();
  EXPECT_EQ(host["state"], "up") << host.dump();
  EXPECT_EQ(host["reconnects"], 1) << host.dump();
}

// ---------------------------------------------------------------------------------------
// A dead Wi-Fi: packets vanish for `outage`. A curl started `curl_at` into the outage waits
// (tether holds it up to 30 s) and is served when the link returns; the forward serves
// within 1 s + one RTT of the restore.
void BlackholeThenRestore(OutageNetTest& t, std::chrono::seconds outage,
                          std::chrono::seconds curl_at) {
  t.Up(t.http_->port());
  ASSERT_TRUE(t.Get(5s));

  ASSERT_TRUE(t.net_->link.Blackhole(true).ok());
  auto cut = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return t.Host()["state"] != "up"; }, 12s, 100ms)) << t.Host().dump();
  long long noticed_ms = MsSince(cut);
  EXPECT_LE(noticed_ms, 7000);  // 2 s x 3 keepalives, plus the status polls

  std::this_thread::sleep_until(cut + curl_at);
  EXPECT_TRUE(t.LocalPortAccepts()) << "the local listener closed during the outage";
  CommandResult curl;
  Clock::time_point curl_done;
  std::thread client([&] {
    curl = t.net_->laptop.Run({"curl", "-sS", "--noproxy", "*", "--max-time", "40",
                               "http://127.0.0.1:" + std::to_string(kLocalPort) + "/during"},
                              {}, 45s);
    curl_done = Clock::now();
  });

  std::this_thread::sleep_until(cut + outage);
  Status restored = t.net_->link.Blackhole(false);
  auto back = Clock::now();
  long long serving_ms = t.ServedAfter(back, 40s);
  client.join();
  long long curl_ms = std::chrono::duration_cast<milliseconds>(curl_done - back).count();
  auto host = t.Host();
  std::cerr << outage.count() << " s blackhole: noticed after " << noticed_ms
            << " ms; forward served again " << serving_ms
            << " ms after the restore; the waiting curl finished " << curl_ms
            << " ms after the restore (exit " << curl.exit_code << "); rtt_ms "
            << host["rtt_ms"].dump() << ", reconnects " << host["reconnects"].dump() << "\n";

  ASSERT_TRUE(restored.ok()) << restored.error().ToString();
  ASSERT_GE(serving_ms, 0) << host.dump();
  long long rtt_ms = host["rtt_ms"].is_number() ? host["rtt_ms"].get<long long>() : 0;
  EXPECT_LE(serving_ms, (kServeAgainBound + kLoadedMachineSlack).count() + rtt_ms)
      << "the issue's bound is 1 s + one RTT after the link returns";
  EXPECT_TRUE(curl.ok()) << curl.Describe();
  EXPECT_EQ(curl.out, kBody);
  auto lines = t.http_->request_lines();
  EXPECT_NE(std::find(lines.begin(), lines.end(), "GET /during HTTP/1.1"), lines.end());
  EXPECT_EQ(host["state"], "up") << host.dump();
  EXPECT_EQ(host["reconnects"], 1) << host.dump();
}

// Note: with the current reconnect schedule this passes because a restore at 20 s falls just
// before a SYN retransmission of the second attempt (it starts ~11.5 s after the link is
// declared dead, and the kernel resends its SYN 1 s and 3 s later); see the test below.
TEST_F(OutageSlowTest,
       ServesWithinASecondAndAHalfAfterATwentySecondBlackholeAndAWaitingCurlSucceeds) {
  BlackholeThenRestore(*this, 20s, 10s);
}

// The same bound after 25 s. Between backoff attempts (0.5, 1, 2, 4 ... 30 s) the daemon
// probes the server once a second while the link is down, so where the restore falls in the
// backoff schedule does not matter (before the probe: found again 0.2 to ~5 s after the
// restore, 4.8 s measured here).
TEST_F(OutageSlowTest, ServesWithinASecondAndAHalfAfterATwentyFiveSecondBlackhole) {
  BlackholeThenRestore(*this, 25s, 10s);
}

// ---------------------------------------------------------------------------------------
// A sleeping laptop: the daemon is frozen for a minute (SIGSTOP), then continues. The
// monotonic clock ran on meanwhile, so its keepalive deadline has long passed; the server
// may still hold the connection (sshd's default: no ClientAlive probes) or may have dropped
// it (ClientAliveInterval 5 x 3). Either way tether must notice at once and serve again.

struct SleepCase {
  const char* name;
  std::vector<std::string> sshd_config;
};

void PrintTo(const SleepCase& c, std::ostream* os) { *os << c.name; }

class OutageSlowSleepTest : public OutageNetTest, public ::testing::WithParamInterface<SleepCase> {
 protected:
  void SetUp() override {
    sshd_options_.extra_config = GetParam().sshd_config;
    OutageNetTest::SetUp();
  }
};

TEST_P(OutageSlowSleepTest, ServesAgainWithinSecondsAfterTheDaemonWasStoppedForAMinute) {
  Up(http_->port());
  ASSERT_TRUE(Get(5s));
  auto before = Host();
  ASSERT_TRUE(before["pid"].is_number()) << before.dump();
  const pid_t pid = before["pid"].get<pid_t>();
  ASSERT_TRUE(ProcessAlive(pid));

  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  std::this_thread::sleep_for(60s);
  ASSERT_EQ(::kill(pid, SIGCONT), 0);
  auto resumed = Clock::now();

  long long serving_ms = ServedAfter(resumed, 30s);
  // And the link behind it is up again (whether or not it had to reconnect).
  bool up = WaitFor([&] { return Host()["state"] == "up"; }, 10s, 100ms);
  long long up_ms = MsSince(resumed);
  auto host = Host();
  std::cerr << "daemon stopped 60 s (" << GetParam().name << "): forward served again "
            << serving_ms << " ms after SIGCONT; state up after <= " << up_ms << " ms; reconnects "
            << host["reconnects"].dump() << ", last_error " << host["last_error"].dump() << "\n";
  ASSERT_GE(serving_ms, 0) << host.dump();
  EXPECT_LE(serving_ms, 5000);
  EXPECT_TRUE(up) << host.dump();
  EXPECT_TRUE(host["reconnects"] == 0 || host["reconnects"] == 1) << host.dump();
  // Still serving a moment later: the resumed link did not fall over again.
  std::this_thread::sleep_for(3s);
  EXPECT_TRUE(Get(5s));
  EXPECT_EQ(Host()["state"], "up");
}

// Full names "Outage/OutageSlowSleepTest.*/<case>", so that --gtest_filter='Outage*' runs them.
INSTANTIATE_TEST_SUITE_P(
    Outage, OutageSlowSleepTest,
    ::testing::Values(SleepCase{"ServerKeepsTheConnection", {}},
                      SleepCase{"ServerDropsTheConnection",
                                {"ClientAliveInterval 5", "ClientAliveCountMax 3"}}),
    [](const ::testing::TestParamInfo<SleepCase>& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------
// A minute of full-speed upload over a 100 ms round trip: the keepalive must see the
// traffic as life, never as an outage.

TEST_F(OutageSlowTest, AMinuteOfFullSpeedTransferOverA100MsLinkRaisesNoFalseAlarm) {
  // 50 ms each way at the IP layer: one TCP connection over the whole round trip.
  if (std::string(NfqDelayBinary()).empty()) GTEST_SKIP() << "nfq_delay was not built";
  Status s = net_->AddIpDelay(50ms, 50ms);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  auto sink = net_->server.MakeServer<SinkServer>();
  ASSERT_TRUE(sink.ok()) << sink.error().ToString();
  sink_ = std::move(*sink);
  Up(sink_->port());
  // The first keepalive on the quiet link measures the round trip: the delay line is in it.
  ASSERT_TRUE(WaitFor([&] { return Host()["rtt_ms"].is_number(); }, 10s, 250ms)) << Host().dump();
  const uint64_t idle_rtt_ms = Host()["rtt_ms"].get<uint64_t>();
  // At least the delay line's 100 ms. No upper bound: tether times a keepalive's answer on its
  // 250 ms link tick, so rtt_ms comes in steps of 250 (250 here).
  EXPECT_GE(idle_rtt_ms, 95u);

  // The sender: pattern bytes as fast as the forward takes them for 60 s, then half-close
  // and read the sink's verdict.
  constexpr auto kTransfer = 60s;
  std::atomic<uint64_t> sent{0};
  std::string verdict, sender_error, sent_sha;
  std::thread sender([&] {
    Status in = net_->laptop.RunIn([&] {
      auto fd = ConnectTcp(kLocalPort);
      if (!fd.ok()) {
        sender_error = fd.error().ToString();
        return;
      }
      PatternGenerator pattern(7);
      Sha256 sha;
      std::string chunk(1 << 20, '\0');
      auto end = Clock::now() + kTransfer;
      while (Clock::now() < end) {
        pattern.Fill(chunk.data(), chunk.size());
        Status w = SendAll(fd->get(), chunk, 30s);
        if (!w.ok()) {
          sender_error = w.error().ToString();
          return;
        }
        sha.Update(chunk.data(), chunk.size());
        sent += chunk.size();
      }
      sent_sha = sha.FinalHex();
      ::shutdown(fd->get(), SHUT_WR);
      auto answer = ReceiveUntil(fd->get(), "\n", 60s);
      if (answer.ok())
        verdict = *answer;
      else
        sender_error = answer.error().ToString();
    });
    if (!in.ok()) sender_error = in.error().ToString();
  });

  // Once a second: the link must stay up with no reconnect, the whole time.
  std::vector<std::string> bad;
  int polls = 0;
  uint64_t max_rtt = 0;
  auto start = Clock::now();
  while (Clock::now() - start < kTransfer + 2s) {
    auto tick = Clock::now();
    auto host = Host();
    ++polls;
    if (host["state"] != "up" || host["reconnects"] != 0) {
      bad.push_back(std::to_string(MsSince(start)) + " ms: " + host.dump());
    }
    if (host["rtt_ms"].is_number()) max_rtt = std::max(max_rtt, host["rtt_ms"].get<uint64_t>());
    std::this_thread::sleep_until(tick + 1s);
  }
  sender.join();
  double seconds = std::chrono::duration<double>(kTransfer).count();
  std::cerr << "60 s at full speed over 100 ms RTT: " << sent.load() << " bytes ("
            << sent.load() * 8 / seconds / 1e6 << " Mbit/s), " << polls << " status polls, "
            << bad.size() << " not up or reconnected; rtt_ms " << idle_rtt_ms << " idle, largest "
            << max_rtt << " during the transfer\n";
  EXPECT_TRUE(sender_error.empty()) << sender_error;
  EXPECT_EQ(verdict, "ok " + std::to_string(sent.load()) + " " + sent_sha + "\n");
  EXPECT_GE(polls, 55);
  EXPECT_TRUE(bad.empty()) << bad.size()
                           << " polls saw an outage; first: " << (bad.empty() ? "" : bad.front());
  auto host = Host();
  EXPECT_EQ(host["reconnects"], 0) << host.dump();
  // Full speed through the relay's 64 MiB buffer at 100 ms is far above this; a forward that
  // stalled for a while would fall below it.
  EXPECT_GT(sent.load() * 8 / seconds / 1e6, 20.0);
}

}  // namespace
}  // namespace tether::testing
