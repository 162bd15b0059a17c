// End-to-end: the daemon's memory stays bounded when readers stall. A granted receive
// window cannot be taken back, so a stalled local reader lets libssh buffer up to its
// channel's window; the window budget (256 MiB over all channels) bounds the sum.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

// VmHWM (peak resident set) of `pid`, in bytes; 0 if unknown.
uint64_t PeakRss(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

using MemorySlowTest = TetherTest;

TEST_F(MemorySlowTest, StalledReadersKeepTheDaemonWithinItsWindowBudgetAndLoseNothing) {
  // 300 x 8 MiB: more than the budget can cover, and more than the kernel's socket
  // buffers of readers that never read hold.
  constexpr int kReaders = 300;
  constexpr uint64_t kBytesEach = 8u << 20;
  SourceServer source(kBytesEach, 3);
  uint16_t local = UpWithForward(source.port());
  auto status = nlohmann::json::parse(Tether({"status", "--json"}).out);
  pid_t pid = status["hosts"][0]["pid"];

  // A thousand connections whose readers do not read: the server side sends, the daemon
  // holds what the windows allow.
  std::vector<UniqueFd> readers;
  for (int i = 0; i < kReaders; ++i) {
    auto fd = ConnectTcp(local);
    ASSERT_TRUE(fd.ok()) << i << ": " << fd.error().ToString();
    readers.push_back(std::move(*fd));
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = nlohmann::json::parse(Tether({"status", "--json"}).out, nullptr, false);
        return s.is_object() && s["hosts"][0]["forwards"][0]["live"] == kReaders;
      },
      seconds(60)));
  std::this_thread::sleep_for(seconds(3));  // let the windows fill
  uint64_t peak = PeakRss(pid);
  status = nlohmann::json::parse(Tether({"status", "--json"}).out);
  uint64_t budget_used = status["hosts"][0]["window_budget_used"];
  std::cerr << kReaders << " stalled readers: daemon peak RSS " << (peak >> 20)
            << " MiB, window budget used " << (budget_used >> 20) << " MiB\n";
  EXPECT_LE(budget_used, 256u << 20);
  // The budget plus the floor windows beyond it, plus the daemon's own (a few tens of MiB).
  EXPECT_LT(peak, (256u << 20) + kReaders * (64u << 10) + (96u << 20));

  // Then every reader reads: every byte arrives, nothing was lost while they stalled.
  int complete = 0;
  for (auto& fd : readers) {
    auto got = ReceiveAllAndHash(fd.get(), seconds(30));
    if (got.ok() && got->bytes == kBytesEach && got->sha256_hex == source.expected_sha256()) {
      ++complete;
    }
  }
  EXPECT_EQ(complete, kReaders);
}

}  // namespace
}  // namespace tether::testing
