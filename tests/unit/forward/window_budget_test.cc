#include "forward/window_budget.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <limits>
#include <thread>
#include <vector>

namespace tether::forward {
namespace {

enum class Op { kReserve, kRelease };

struct Step {
  Op op;
  size_t bytes;
  bool want_reserved;  // for kReserve
  size_t want_used;
};

TEST(WindowBudget, ReservesWithinTheLimitAndReleasesBack) {
  WindowBudget budget(100);
  const std::vector<Step> steps = {
      {Op::kReserve, 60, true, 60},    // fits
      {Op::kReserve, 41, false, 60},   // one byte too many: takes nothing
      {Op::kReserve, 40, true, 100},   // fills it exactly
      {Op::kReserve, 1, false, 100},   // full
      {Op::kReserve, 0, true, 100},    // nothing always fits
      {Op::kRelease, 30, false, 70},   // gives back
      {Op::kReserve, 30, true, 100},   // and it can be taken again
      {Op::kRelease, 100, false, 0},   // all of it
      {Op::kReserve, 101, false, 0},   // more than the whole budget never fits
      {Op::kReserve, 100, true, 100},  // the whole budget does
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    if (s.op == Op::kReserve) {
      EXPECT_EQ(budget.TryReserve(s.bytes), s.want_reserved) << "step " << i;
    } else {
      budget.Release(s.bytes);
    }
    EXPECT_EQ(budget.used(), s.want_used) << "step " << i;
    EXPECT_EQ(budget.limit(), 100u) << "step " << i;
  }
}

TEST(WindowBudget, ReleasingMoreThanIsUsedLeavesNothingUsed) {
  WindowBudget budget(100);
  ASSERT_TRUE(budget.TryReserve(10));
  budget.Release(25);
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_TRUE(budget.TryReserve(100));
  EXPECT_FALSE(budget.TryReserve(1));
}

TEST(WindowBudget, AZeroBudgetTakesNothing) {
  WindowBudget budget(0);
  EXPECT_FALSE(budget.TryReserve(1));
  EXPECT_EQ(budget.used(), 0u);
}

TEST(WindowBudget, RefusesAReservationThatWouldOverflow) {
  WindowBudget budget(100);
  ASSERT_TRUE(budget.TryReserve(10));
  EXPECT_FALSE(budget.TryReserve(std::numeric_limits<size_t>::max()));
  EXPECT_EQ(budget.used(), 10u);
  EXPECT_FALSE(budget.TryReserve(std::numeric_limits<size_t>::max() - 5));
  EXPECT_EQ(budget.used(), 10u);
}

TEST(WindowBudget, ThreadsSharingItGrantExactlyTheLimitAndGetEveryByteBack) {
  // The daemon's loop and its lanes reserve and release from their own threads. Four
  // threads ask for twice the limit, a byte at a time: exactly the limit is granted (a
  // lost update would grant more), and releasing what each got leaves nothing used.
  constexpr int kThreads = 4;
  constexpr int kRounds = 20000;
  WindowBudget budget(kThreads * kRounds / 2);
  std::vector<int> granted(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) granted[t] += budget.TryReserve(1) ? 1 : 0;
    });
  }
  for (auto& th : threads) th.join();
  int total = 0;
  for (int g : granted) total += g;
  EXPECT_EQ(total, kThreads * kRounds / 2);
  EXPECT_EQ(budget.used(), budget.limit());
  threads.clear();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < granted[t]; ++i) budget.Release(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace tether::forward
