// End-to-end: receive windows on a long link (netbed.h). One download through `tether up -L`
// over a 100 ms round trip must grow its channel's window past OpenSSH's 2 MiB (the window
// is what bounds one stream there: 2 MiB per round trip is about 168 Mbit/s), arrive
// byte-identical, and give the whole window back to the budget when the stream ends.
//
// What is asserted is the window (status's window_budget_used), not a rate: the rate is
// printed. Skips without root (LaptopServer::Create fails).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "e2e/netbed.h"

namespace tether::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The laptop namespace's own port space is empty: a fixed port cannot collide.
constexpr uint16_t kLocalPort = 18090;
// OpenSSH's channel window, which tether starts below and must grow past.
constexpr uint64_t kOpenSshWindow = 2u << 20;
// Enough bytes for several doublings at 100 ms: about 2 s at 1 Gbit/s, 12 s if the window
// stayed at 2 MiB.
constexpr uint64_t kDownload = 256u << 20;

class LongLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto net = LaptopServer::Create();
    if (!net.ok()) GTEST_SKIP() << net.error().ToString();
    net_ = std::move(*net);
    Status s = sshd_.Start(net_->server, net_->server_ip);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }

  void TearDown() override {
    if (!net_) return;
    if (HasFailure()) {
      auto log = ReadFile(state_.File("testhost.log"));
      if (log.ok()) {
        std::cerr << "daemon log (tail):\n"
                  << log->substr(log->size() > 8000 ? log->size() - 8000 : 0);
      }
      std::cerr << "sshd log (tail):\n" << sshd_.LogTail();
    }
    StopAllTethers(state_.path());
    // Servers and the relay before the namespaces they live in.
    source_.reset();
    relay_.reset();
    sshd_.Stop();
  }

  // window_budget_used of `tether status --json`, or -1.
  int64_t BudgetUsed() const {
    CommandResult r = net_->laptop.RunTether(state_.path(), {"status", "--json"}, 10s);
    auto json = nlohmann::json::parse(r.out, nullptr, false);
    if (!json.is_object() || !json["hosts"].is_array() || json["hosts"].empty()) return -1;
    const auto& used = json["hosts"][0]["window_budget_used"];
    return used.is_number() ? used.get<int64_t>() : -1;
  }

  std::unique_ptr<LaptopServer> net_;
  ServerSshd sshd_;
  std::unique_ptr<DelayRelay> relay_;
  std::unique_ptr<SourceServer> source_;
  TempDir state_;
};

TEST_F(LongLinkTest, ADownloadOver100MsGrowsItsWindowPastOpenSshsAndGivesItBackAfter) {
  // sshd's own port behind a delay line in the server namespace: 50 ms each way.
  relay_ = std::make_unique<DelayRelay>();
  DelayRelayOptions relay_options;
  relay_options.listen_ip = net_->server_ip;
  relay_options.listen_port = 2222;
  relay_options.connect_port = sshd_.port();  // sshd's 127.0.0.1 listener
  relay_options.delay = 50ms;
  Status s = relay_->Start(relay_options, &net_->server);
  ASSERT_TRUE(s.ok()) << s.error().ToString();
  ASSERT_TRUE(sshd_.AddKnownHost(net_->server_ip, relay_->port()).ok());
  TempDir dir;
  ClientConfigOptions client;
  client.overrides["Port"] = std::to_string(relay_->port());
  ASSERT_TRUE(sshd_.WriteClientConfig(dir.File("ssh_config"), client).ok());
  auto source = net_->server.MakeServer<SourceServer>(kDownload, 11);
  ASSERT_TRUE(source.ok()) << source.error().ToString();
  source_ = std::move(*source);

  CommandResult up = net_->laptop.RunTether(
      state_.path(),
      {"-F", dir.File("ssh_config"), "-v", "up", "testhost", "--lanes", "0", "-L",
       std::to_string(kLocalPort) + ":127.0.0.1:" + std::to_string(source_->port())},
      60s);
  ASSERT_TRUE(up.ok()) << up.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  ASSERT_EQ(BudgetUsed(), 0);

  // The reader, while the test samples the window every 100 ms.
  std::atomic<bool> done{false};
  Result<TransferSummary> got = MakeError("test", "not run");
  auto started = Clock::now();
  std::thread reader([&] {
    Status in = net_->laptop.RunIn([&] { got = ReadFromSource(kLocalPort, 90s); });
    if (!in.ok()) got = in.take_error();
    done = true;
  });
  int64_t largest = 0;
  int samples = 0;
  for (auto deadline = Clock::now() + 100s; !done && Clock::now() < deadline; ++samples) {
    largest = std::max(largest, BudgetUsed());
    std::this_thread::sleep_for(100ms);
  }
  reader.join();
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();

  ASSERT_TRUE(got.ok()) << got.error().ToString();
  std::cerr << kDownload << " bytes over 100 ms RTT in " << seconds << " s ("
            << got->bytes * 8 / seconds / 1e6 << " Mbit/s); largest window granted " << largest
            << " bytes over " << samples << " samples\n";
  EXPECT_EQ(got->bytes, kDownload);
  EXPECT_EQ(got->sha256_hex, source_->expected_sha256());
  EXPECT_GE(static_cast<uint64_t>(largest), 4 * kOpenSshWindow);
  // The stream is over: its window is the budget's again.
  EXPECT_TRUE(WaitFor([&] { return BudgetUsed() == 0; }, 10s, 100ms)) << BudgetUsed();
}

}  // namespace
}  // namespace tether::testing
