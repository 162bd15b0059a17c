// End-to-end: receive windows on a long link (netbed.h), 100 ms round trip added at the IP
// layer (NfqDelayLine: one TCP connection end to end, as on a real path). A download must
// grow its channel's window past OpenSSH's 2 MiB (the window is what bounds one stream
// there: 2 MiB per round trip is about 168 Mbit/s), arrive byte-identical, and give the
// whole window back to the budget when it ends: through `tether up -L`, and on session
// channels (`tether exec cat`, scp through HOST.mux).
//
// What is asserted is the window (status's window_budget_used), not a rate: the rate is
// printed. Skips without root (LaptopServer::Create fails) or without nfq_delay.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
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
// A file copied over session channels: several doublings past 2 MiB, about 5 s at 2 MiB.
constexpr size_t kFileBytes = 96u << 20;
constexpr auto kOneWay = 50ms;

class LongLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto net = LaptopServer::Create();
    if (!net.ok()) GTEST_SKIP() << net.error().ToString();
    if (std::string(NfqDelayBinary()).empty()) {
      GTEST_SKIP() << "nfq_delay was not built (apt-get install libnetfilter-queue-dev)";
    }
    net_ = std::move(*net);
    Status s = net_->AddIpDelay(kOneWay, kOneWay);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    ServerSshdOptions options;
    // sshd logs every window adjustment it receives at DEBUG2 ("rcvd adjust N"): what we
    // really granted, seen from the other end.
    options.extra_config = {"LogLevel DEBUG2"};
    s = sshd_.Start(net_->server, net_->server_ip, options);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }

  void TearDown() override {
    if (!net_) return;
    if (HasFailure()) {
      PrintDaemonLogTail(state_.path());
      std::cerr << "sshd log (tail):\n" << sshd_.LogTail();
    }
    StopAllTethers(state_.path());
    // Servers before the namespaces they live in.
    source_.reset();
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

  // The size of sshd's log now: where LargestAdjustSince starts reading.
  size_t LogMark() const {
    auto log = ReadFile(sshd_.log_path());
    return log.ok() ? log->size() : 0;
  }
  // The largest window adjustment sshd received after `mark`. A window of W bytes is
  // reached from W/2 by an adjustment of at least W/2: one of 4 MiB or more means a window
  // of 8 MiB or more, past OpenSSH's 2 MiB.
  uint64_t LargestAdjustSince(size_t mark) const {
    auto log = ReadFile(sshd_.log_path());
    if (!log.ok() || log->size() < mark) return 0;
    uint64_t largest = 0;
    const std::string needle = "rcvd adjust ";
    for (size_t at = log->find(needle, mark); at != std::string::npos;
         at = log->find(needle, at + 1)) {
      largest = std::max<uint64_t>(largest,
                                   std::strtoull(log->c_str() + at + needle.size(), nullptr, 10));
    }
    return largest;
  }

  // Runs `run` (a command that copies a file down) while sampling the window budget every
  // 100 ms; returns the largest window seen and prints the rate.
  int64_t LargestWindowWhile(const std::string& what, const std::function<CommandResult()>& run) {
    std::atomic<bool> done{false};
    CommandResult result;
    auto started = Clock::now();
    std::thread copier([&] {
      result = run();
      done = true;
    });
    int64_t largest = 0;
    for (auto deadline = Clock::now() + 100s; !done && Clock::now() < deadline;) {
      largest = std::max(largest, BudgetUsed());
      std::this_thread::sleep_for(100ms);
    }
    copier.join();
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    EXPECT_TRUE(result.ok()) << what << ": " << result.Describe();
    std::cerr << what << ": " << kFileBytes << " bytes over 100 ms RTT in " << seconds << " s ("
              << kFileBytes * 8 / seconds / 1e6 << " Mbit/s); largest window granted " << largest
              << " bytes\n";
    return largest;
  }

  std::unique_ptr<LaptopServer> net_;
  ServerSshd sshd_;
  std::unique_ptr<SourceServer> source_;
  TempDir state_;
};

TEST_F(LongLinkTest, ADownloadOver100MsGrowsItsWindowPastOpenSshsAndGivesItBackAfter) {
  const std::string config = sshd_.config_path();
  auto source = net_->server.MakeServer<SourceServer>(kDownload, 11);
  ASSERT_TRUE(source.ok()) << source.error().ToString();
  source_ = std::move(*source);

  CommandResult up = net_->laptop.RunTether(
      state_.path(),
      {"-F", config, "-v", "up", "testhost", "--lanes", "0", "-L",
       std::to_string(kLocalPort) + ":127.0.0.1:" + std::to_string(source_->port())},
      60s);
  ASSERT_TRUE(up.ok()) << up.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  ASSERT_EQ(BudgetUsed(), 0);
  const size_t mark = LogMark();

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
  EXPECT_GE(LargestAdjustSince(mark), 2 * kOpenSshWindow) << "sshd saw no window past 2 MiB";
  // The stream is over: its window is the budget's again.
  EXPECT_TRUE(WaitFor([&] { return BudgetUsed() == 0; }, 10s, 100ms)) << BudgetUsed();
}

TEST_F(LongLinkTest, SessionChannelsGrowTheirWindowsToo) {
  // exec and the mux's sessions (scp, rsync, git) are session channels, and ssh -W a
  // direct-tcpip channel of the mux, not forwards: the same window growth, all the same.
  TempDir files;
  const std::string src = files.File("src.bin");
  const std::string data = PatternBytes(21, kFileBytes);
  ASSERT_TRUE(WriteFile(src, data).ok());
  const std::string want = Sha256Hex(data);
  const std::string config = sshd_.config_path();
  CommandResult up =
      net_->laptop.RunTether(state_.path(), {"-F", config, "up", "testhost", "--lanes", "0"}, 60s);
  ASSERT_TRUE(up.ok()) << up.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  const Env env = {{"TETHER_STATE_DIR", state_.path()}};

  const std::string by_exec = files.File("exec.bin");
  size_t mark = LogMark();
  int64_t exec_window = LargestWindowWhile("tether exec cat", [&] {
    return net_->laptop.Run(
        {"sh", "-c", std::string("exec \"$0\" -F \"$1\" exec testhost -- cat \"$2\" > \"$3\""),
         TetherBinary(), config, src, by_exec},
        env, 120s);
  });
  auto got = ReadFile(by_exec);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), kFileBytes);
  EXPECT_EQ(Sha256Hex(*got), want) << "tether exec cat";
  EXPECT_GE(static_cast<uint64_t>(exec_window), 4 * kOpenSshWindow) << "tether exec cat";
  EXPECT_GE(LargestAdjustSince(mark), 2 * kOpenSshWindow)
      << "tether exec cat: sshd saw no window past 2 MiB";
  EXPECT_TRUE(WaitFor([&] { return BudgetUsed() == 0; }, 10s, 100ms)) << BudgetUsed();

  const std::string by_scp = files.File("scp.bin");
  mark = LogMark();
  int64_t scp_window = LargestWindowWhile("scp through HOST.mux", [&] {
    return net_->laptop.Run(
        {"scp", "-q", "-F", config, "-o", "ControlMaster=no", "-o",
         "ControlPath=" + state_.File("testhost.mux"), "testhost:" + src, by_scp},
        env, 120s);
  });
  got = ReadFile(by_scp);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(Sha256Hex(*got), want) << "scp through the mux";
  EXPECT_GE(static_cast<uint64_t>(scp_window), 4 * kOpenSshWindow) << "scp through the mux";
  EXPECT_GE(LargestAdjustSince(mark), 2 * kOpenSshWindow) << "scp: sshd saw no window past 2 MiB";
  EXPECT_TRUE(WaitFor([&] { return BudgetUsed() == 0; }, 10s, 100ms)) << BudgetUsed();

  // ssh -W through the mux: a direct-tcpip channel between ssh's stdio and a server port.
  auto source = net_->server.MakeServer<SourceServer>(kFileBytes, 23);
  ASSERT_TRUE(source.ok()) << source.error().ToString();
  source_ = std::move(*source);
  const std::string by_w = files.File("w.bin");
  mark = LogMark();
  int64_t w_window = LargestWindowWhile("ssh -W through HOST.mux", [&] {
    return net_->laptop.Run(
        {"sh", "-c",
         "exec ssh -F \"$0\" -o ControlMaster=no -o ControlPath=\"$1\" -W \"$2\" testhost > \"$3\"",
         config, state_.File("testhost.mux"), "127.0.0.1:" + std::to_string(source_->port()), by_w},
        env, 120s);
  });
  got = ReadFile(by_w);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), kFileBytes);
  EXPECT_EQ(Sha256Hex(*got), source_->expected_sha256()) << "ssh -W";
  EXPECT_GE(static_cast<uint64_t>(w_window), 4 * kOpenSshWindow) << "ssh -W";
  EXPECT_GE(LargestAdjustSince(mark), 2 * kOpenSshWindow)
      << "ssh -W: sshd saw no window past 2 MiB";
}

}  // namespace
}  // namespace tether::testing
