#include "forward/receive_window.h"

#include <gtest/gtest.h>

namespace tether::forward {
namespace {

using namespace std::chrono_literals;

// Drains `bytes` in reads of 64 KiB, each waiting `stall` for its data, over a link of
// `rtt` (nullopt: unknown) at `mbit_s`.
void Drain(ReceiveWindow& w, uint64_t& drained, uint64_t bytes, std::chrono::milliseconds stall,
           bool keeps_up = true, std::optional<std::chrono::microseconds> rtt = std::nullopt,
           double mbit_s = 1000) {
  static std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  for (uint64_t end = drained + bytes; drained < end;) {
    drained += 64u << 10;
    now += std::chrono::nanoseconds(static_cast<int64_t>((64u << 10) * 8 * 1000 / mbit_s));
    w.AfterRead(drained, keeps_up, [&] {
      return LinkEvidence{std::chrono::steady_clock::duration(stall), rtt, now};
    });
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

// About a window a round trip on a long link is a window that limits, even when the
// sender never waits long; the same rate over a short or unknown round trip is not.
TEST(ReceiveWindow, GrowsWhenAWindowMovesPerRoundTripOfALongLink) {
  struct Case {
    std::optional<std::chrono::microseconds> rtt;
    double mbit_s;
    bool grows;
  };
  const Case cases[] = {
      {20ms, 660, true},   // 1.65 MB a round trip: 79% of 2 MiB
      {20ms, 300, false},  // 0.75 MB: 36%
      {5ms, 2000, false},  // a busy LAN or loopback: its RTT says little
      {std::nullopt, 2000, false}, {100us, 20000, false},
  };
  for (const Case& c : cases) {
    WindowBudget budget(1u << 30);
    ReceiveWindow w(budget, "test");
    w.Start();
    uint64_t drained = 0;
    Drain(w, drained, 64u << 20, 1ms, true, c.rtt, c.mbit_s);
    if (c.grows) {
      EXPECT_GT(w.size(), kInitialWindow) << c.mbit_s << " Mbit/s";
    } else {
      EXPECT_EQ(w.size(), kInitialWindow) << c.mbit_s << " Mbit/s";
    }
  }
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
