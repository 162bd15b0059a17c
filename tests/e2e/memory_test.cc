// End-to-end: the daemon's memory stays bounded when readers stall. A granted receive
// window cannot be taken back, so a stalled local reader lets libssh buffer up to its
// channel's window; the window budget (256 MiB over all channels) bounds the sum.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

using MemorySlowTest = TetherTest;

TEST_F(MemorySlowTest, StalledReadersKeepTheDaemonWithinItsWindowBudgetAndLoseNothing) {
  // 1000 x 8 MiB: more than the budget can cover, and more than the kernel's socket
  // buffers of readers that never read hold.
  constexpr int kReaders = 1000;
  constexpr uint64_t kBytesEach = 8u << 20;
  SourceServer source(kBytesEach, 3);
  uint16_t local = UpWithForward(source.port());
  auto status = nlohmann::json::parse(Tether({"status", "--json"}).out);
  pid_t pid = status["hosts"][0]["pid"];

  // The test holds two descriptors per reader (its end and the source's).
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  limit.rlim_cur = limit.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
  ASSERT_GE(limit.rlim_cur, 2u * kReaders + 100) << "the hard descriptor limit is too low";

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
  // Let the windows fill: the budget in use stops growing (two readings 500 ms apart agree).
  uint64_t last_used = UINT64_MAX;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto s = nlohmann::json::parse(Tether({"status", "--json"}).out, nullptr, false);
        if (!s.is_object() || !s["hosts"][0]["window_budget_used"].is_number()) return false;
        uint64_t used = s["hosts"][0]["window_budget_used"];
        bool settled = used == last_used && used > 0;
        last_used = used;
        return settled;
      },
      seconds(20), std::chrono::milliseconds(500)))
      << "the window budget in use never settled";
  auto peak_read = ProcessMemoryBytes(pid, "VmHWM");  // the peak resident set
  ASSERT_TRUE(peak_read.ok()) << peak_read.error().ToString();
  const uint64_t peak = *peak_read;
  status = nlohmann::json::parse(Tether({"status", "--json"}).out);
  uint64_t budget_used = status["hosts"][0]["window_budget_used"];
  std::cerr << kReaders << " stalled readers: daemon peak RSS " << (peak >> 20)
            << " MiB, window budget used " << (budget_used >> 20) << " MiB\n";
  EXPECT_LE(budget_used, 256u << 20);
  // The budget plus the floor windows beyond it, plus the daemon's own (a few tens of MiB).
  EXPECT_LT(peak, (256u << 20) + kReaders * (64u << 10) + (96u << 20));

  // Most readers then give up: their channels close and sshd drops what it queued for them
  // (a sshd holding a thousand full channel buffers crawls: OpenSSH reallocates and zeroes
  // a channel's buffer as it grows). The rest read everything: nothing was lost while
  // they stalled.
  constexpr int kKept = 20;
  readers.resize(kKept);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = nlohmann::json::parse(Tether({"status", "--json"}).out, nullptr, false);
        return s.is_object() && s["hosts"][0]["forwards"][0]["live"] == kKept;
      },
      seconds(120)));
  int complete = 0;
  std::string first_error;
  for (auto& fd : readers) {
    auto got = ReceiveAllAndHash(fd.get(), seconds(60));
    if (got.ok() && got->bytes == kBytesEach && got->sha256_hex == source.expected_sha256()) {
      ++complete;
    } else if (first_error.empty()) {
      first_error =
          got.ok() ? "got " + std::to_string(got->bytes) + " bytes" : got.error().ToString();
    }
  }
  EXPECT_EQ(complete, kKept) << "first failure: " << first_error;
  status = nlohmann::json::parse(Tether({"status", "--json"}).out);
  EXPECT_EQ(status["hosts"][0]["reconnects"], 0) << "a busy sshd is not a dead link";
}

}  // namespace
}  // namespace tether::testing
