#include "ssh/window_grant.h"

#include <gtest/gtest.h>

namespace tether::ssh {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kWindow = 1u << 20;
constexpr size_t kCap = 64u << 20;

TEST(WindowGrant, GrantsTheWholeWindowFirstThenOnlyWhatIsBuffered) {
  WindowGrant grant;
  EXPECT_EQ(grant.Count(kWindow, 1000, kCap), kWindow);
  grant.Consumed(1000);
  // Under a quarter used: ask for exactly what is buffered, which grants nothing.
  EXPECT_EQ(grant.Count(kWindow, 5000, kCap), 5000u);
  grant.Consumed(5000);
  EXPECT_EQ(grant.Count(kWindow, 0, kCap), 1u) << "nothing buffered: a one-byte ask";
}

TEST(WindowGrant, ReGrantsOnceAQuarterIsUsedAndWhenTheWindowGrows) {
  WindowGrant grant;
  ASSERT_EQ(grant.Count(kWindow, 0, kCap), kWindow);
  grant.Consumed(kWindow / 4 - 1);
  EXPECT_EQ(grant.Count(kWindow, 10, kCap), 10u);
  grant.Consumed(1);
  EXPECT_EQ(grant.Count(kWindow, 10, kCap), kWindow) << "a quarter used";
  EXPECT_EQ(grant.Count(2 * kWindow, 10, kCap), 2 * kWindow) << "a larger window at once";
}

TEST(WindowGrant, NeverAsksForMoreThanTheBufferHolds) {
  WindowGrant grant;
  EXPECT_EQ(grant.Count(kWindow, 0, 4096), 4096u);
}

TEST(StallMeter, MeasuresFromTheFirstEmptyReadToTheNextDataAndResets) {
  StallMeter meter;
  const auto t0 = StallMeter::Clock::time_point{} + 1s;
  meter.Empty(t0);
  meter.Empty(t0 + 5ms);  // still the same wait
  meter.Data(t0 + 30ms);
  meter.Data(t0 + 40ms);  // not waiting: nothing
  meter.Empty(t0 + 50ms);
  meter.Data(t0 + 60ms);
  EXPECT_EQ(meter.Take(), 30ms);
  EXPECT_EQ(meter.Take(), 0ms);
}

}  // namespace
}  // namespace tether::ssh
