#include <gtest/gtest.h>

#include "forward/forward_stats.h"

namespace tether::forward {
namespace {

using std::chrono::milliseconds;

TEST(RateMeter, ReportsBytesPerSecondOverTheSpan) {
  RateMeter meter;
  ForwardStats stats;
  auto t0 = RateMeter::Clock::time_point{} + std::chrono::hours(1);
  meter.Sample(t0, stats);
  EXPECT_EQ(stats.rate_in_bps, 0);
  // 1 MB in and 250 kB out every 250 ms: 4 MB/s and 1 MB/s.
  for (int i = 1; i <= 16; ++i) {
    stats.bytes_in += 1'000'000;
    stats.bytes_out += 250'000;
    meter.Sample(t0 + milliseconds(250 * i), stats);
  }
  EXPECT_NEAR(stats.rate_in_bps, 4e6, 1);
  EXPECT_NEAR(stats.rate_out_bps, 1e6, 1);
}

TEST(RateMeter, FallsToZeroWithinTheSpanAfterTrafficStops) {
  RateMeter meter;
  ForwardStats stats;
  auto t0 = RateMeter::Clock::time_point{} + std::chrono::hours(1);
  meter.Sample(t0, stats);
  stats.bytes_in = 10'000'000;
  meter.Sample(t0 + milliseconds(250), stats);
  EXPECT_GT(stats.rate_in_bps, 0);
  for (int i = 2; i <= 12; ++i) meter.Sample(t0 + milliseconds(250 * i), stats);
  EXPECT_EQ(stats.rate_in_bps, 0);
}

TEST(RateMeter, AFirstSampleHasNoRate) {
  RateMeter meter;
  ForwardStats stats;
  stats.bytes_in = 123;
  meter.Sample(RateMeter::Clock::now(), stats);
  EXPECT_EQ(stats.rate_in_bps, 0);
  EXPECT_EQ(stats.rate_out_bps, 0);
}

}  // namespace
}  // namespace tether::forward
