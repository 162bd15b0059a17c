#include "daemon/keepalive.h"

#include <gtest/gtest.h>

#include "daemon/backoff.h"

namespace tether::daemon {
namespace {

using std::chrono::milliseconds;
using Action = Keepalive::Action;

TEST(Keepalive, ProbesAfterAQuietIntervalAndDeclaresDeathAfterCountIntervals) {
  auto t0 = Keepalive::Clock::time_point{} + std::chrono::hours(1);
  Keepalive k(milliseconds(2000), 3, t0);
  EXPECT_EQ(k.Tick(t0 + milliseconds(1999)), Action::kNone);
  EXPECT_EQ(k.Tick(t0 + milliseconds(2000)), Action::kSendProbe);
  EXPECT_EQ(k.Tick(t0 + milliseconds(3000)), Action::kNone);  // one in flight
  EXPECT_EQ(k.Tick(t0 + milliseconds(4000)), Action::kSendProbe);
  EXPECT_EQ(k.Tick(t0 + milliseconds(5999)), Action::kNone);
  EXPECT_EQ(k.Tick(t0 + milliseconds(6000)), Action::kDead);
}

TEST(Keepalive, AnyByteReceivedCountsAsLife) {
  auto t0 = Keepalive::Clock::time_point{} + std::chrono::hours(1);
  Keepalive k(milliseconds(2000), 3, t0);
  // A stream at full speed: bytes every 100 ms for a minute, never a probe or an alarm.
  for (int i = 1; i <= 600; ++i) {
    auto now = t0 + milliseconds(100 * i);
    k.OnReceived(now);
    EXPECT_EQ(k.Tick(now), Action::kNone);
  }
}

TEST(Keepalive, AnswerToAProbeOnAQuietLinkGivesTheRoundTrip) {
  auto t0 = Keepalive::Clock::time_point{} + std::chrono::hours(1);
  Keepalive k(milliseconds(2000), 3, t0);
  EXPECT_FALSE(k.rtt().has_value());
  ASSERT_EQ(k.Tick(t0 + milliseconds(2000)), Action::kSendProbe);
  k.OnReceived(t0 + milliseconds(2042));
  ASSERT_TRUE(k.rtt().has_value());
  EXPECT_EQ(*k.rtt(), milliseconds(42));
  // The answer resets the count: death is 6 s after the last byte.
  EXPECT_EQ(k.Tick(t0 + milliseconds(2042 + 5999)), Action::kSendProbe);
  EXPECT_EQ(k.Tick(t0 + milliseconds(2042 + 6000)), Action::kDead);
}

TEST(Keepalive, NextTickIsTheNextDecisionPoint) {
  auto t0 = Keepalive::Clock::time_point{} + std::chrono::hours(1);
  Keepalive k(milliseconds(2000), 3, t0);
  EXPECT_EQ(k.NextTick(), t0 + milliseconds(2000));
  ASSERT_EQ(k.Tick(t0 + milliseconds(2000)), Action::kSendProbe);
  EXPECT_EQ(k.NextTick(), t0 + milliseconds(4000));
  ASSERT_EQ(k.Tick(t0 + milliseconds(4000)), Action::kSendProbe);
  ASSERT_EQ(k.Tick(t0 + milliseconds(5000)), Action::kNone);
  EXPECT_EQ(k.NextTick(), t0 + milliseconds(6000));
}

TEST(Backoff, GrowsExponentiallyWithJitterUpToTheCap) {
  Backoff b(42);
  double expected = 500;
  for (int i = 0; i < 12; ++i) {
    auto d = b.Next().count();
    double base = std::min(expected, 30000.0);
    EXPECT_GE(d, static_cast<int64_t>(base * 0.8) - 1) << "attempt " << i;
    EXPECT_LE(d, std::min<int64_t>(static_cast<int64_t>(base * 1.2) + 1, 30000)) << "attempt " << i;
    expected *= 2;
  }
  EXPECT_EQ(b.attempts(), 12);
}

TEST(Backoff, ResetStartsOverAtTheInitialDelay) {
  Backoff b(7);
  for (int i = 0; i < 6; ++i) (void)b.Next();
  b.Reset();
  auto d = b.Next().count();
  EXPECT_GE(d, 400);
  EXPECT_LE(d, 600);
}

TEST(Backoff, DifferentSeedsSpreadTheDelays) {
  Backoff a(1), b(2);
  bool differ = false;
  for (int i = 0; i < 5; ++i) differ |= a.Next() != b.Next();
  EXPECT_TRUE(differ);
}

}  // namespace
}  // namespace tether::daemon

namespace tether::daemon {
namespace {

TEST(KeepaliveResume, AfterAStopItProbesAtOnceAndGivesOneIntervalForTheAnswer) {
  using std::chrono::milliseconds;
  auto t0 = Keepalive::Clock::time_point{} + std::chrono::hours(1);
  Keepalive k(milliseconds(2000), 3, t0);
  // Stopped for a minute: the silence would read as death.
  auto later = t0 + std::chrono::seconds(60);
  EXPECT_EQ(k.Tick(later), Keepalive::Action::kDead);
  Keepalive resumed(milliseconds(2000), 3, t0);
  resumed.Resume(later);
  EXPECT_EQ(resumed.Tick(later), Keepalive::Action::kSendProbe);
  EXPECT_EQ(resumed.Tick(later + milliseconds(1000)), Keepalive::Action::kNone);
  EXPECT_EQ(resumed.Tick(later + milliseconds(2000)), Keepalive::Action::kDead);
  // An answer in time keeps it alive, with the round trip measured.
  Keepalive answered(milliseconds(2000), 3, t0);
  answered.Resume(later);
  EXPECT_EQ(answered.Tick(later), Keepalive::Action::kSendProbe);
  answered.OnReceived(later + milliseconds(40));
  EXPECT_EQ(answered.Tick(later + milliseconds(2000)), Keepalive::Action::kNone);
  ASSERT_TRUE(answered.rtt().has_value());
  EXPECT_EQ(answered.rtt()->count(), 40);
}

}  // namespace
}  // namespace tether::daemon
