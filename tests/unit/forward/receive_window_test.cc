#include "forward/receive_window.h"

#include <gtest/gtest.h>

namespace tether::forward {
namespace {

using namespace std::chrono_literals;

// Drains `bytes` in reads of 64 KiB, each waiting `stall` for its data.
void Drain(ReceiveWindow& w, uint64_t& drained, uint64_t bytes, std::chrono::milliseconds stall,
           bool keeps_up = true) {
  for (uint64_t end = drained + bytes; drained < end;) {
    drained += 64u << 10;
    w.AfterRead(drained, keeps_up, [&] { return std::chrono::steady_clock::duration(stall); });
  }
}

TEST(ReceiveWindow, StartsSmallAndReachesOpenSshsWindowAtTheReadersPace) {
  WindowBudget budget(1u << 30);
  ReceiveWindow w(budget, "test");
  EXPECT_EQ(w.size(), 0u) << "nothing before the channel opens";
  w.Start();
  EXPECT_EQ(w.size(), kStartWindow);
  EXPECT_EQ(budget.used(), kStartWindow);
  uint64_t drained = 0;
  Drain(w, drained, 8u << 20, 0ms);
  EXPECT_EQ(w.size(), kInitialWindow) << "no stalls: no growth past 2 MiB";
}

TEST(ReceiveWindow, GrowsOnALongLinkUpToTheCeilingAndGivesItAllBack) {
  WindowBudget budget(1u << 30);
  {
    ReceiveWindow w(budget, "test");
    w.Start();
    uint64_t drained = 0;
    Drain(w, drained, uint64_t{1} << 30, kWindowStall);
    EXPECT_EQ(w.size(), kWindowCeiling);
    EXPECT_EQ(budget.used(), kWindowCeiling);
  }
  EXPECT_EQ(budget.used(), 0u);
}

TEST(ReceiveWindow, AReaderThatLagsGetsNoMore) {
  WindowBudget budget(1u << 30);
  ReceiveWindow w(budget, "test");
  w.Start();
  uint64_t drained = 0;
  Drain(w, drained, 64u << 20, kWindowStall, /*keeps_up=*/false);
  EXPECT_EQ(w.size(), kStartWindow);
}

TEST(ReceiveWindow, AnEmptyBudgetStillLeavesTheSmallestWindowOutsideIt) {
  WindowBudget budget(kMinWindow / 2);
  ReceiveWindow w(budget, "test");
  w.Start();
  EXPECT_EQ(w.size(), kMinWindow);
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace tether::forward
