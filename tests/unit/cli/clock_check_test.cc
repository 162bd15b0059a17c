#include "cli/clock_check.h"

#include <gtest/gtest.h>

#include <vector>

namespace tether::cli {
namespace {

struct ClockCase {
  double remote, sent, answered;
  const char* status;
  const char* evidence;
};

TEST(JudgeClock, GoesByTheOffsetNearestZeroThatTheRoundTripAllows) {
  const std::vector<ClockCase> cases = {
      // In step, a quick answer.
      {1000.06, 1000.0, 1000.1, "pass", "the server's clock is +0.01 s from the laptop's"},
      // In step, but the server's shell rc took 10 s before `date` ran: not a warning.
      {1009.9, 1000.0, 1010.0, "pass",
       "the server's clock is +4.90 s from the laptop's (+-5.00 s: the command took 10.00 s)"},
      // 5 s ahead on a quick answer; 5 s behind.
      {1005.05, 1000.0, 1000.1, "warn", "the server's clock is +5.00 s from the laptop's"},
      {995.05, 1000.0, 1000.1, "warn", "the server's clock is -5.00 s from the laptop's"},
      // Just under and at the warning bound (the nearest end of the range counts).
      {1002.09, 1000.0, 1000.1, "pass", "the server's clock is +2.04 s from the laptop's"},
      {1002.2, 1000.0, 1000.1, "warn", "the server's clock is +2.15 s from the laptop's"},
      // Two minutes off, even with a slow answer, is a failure.
      {1130.0, 1000.0, 1010.0, "fail",
       "the server's clock is +125.00 s from the laptop's (+-5.00 s: the command took 10.00 s)"},
      {870.0, 1000.0, 1000.2, "fail", "the server's clock is -130.10 s from the laptop's"},
  };
  for (const ClockCase& c : cases) {
    ClockCheck got = JudgeClock(c.remote, c.sent, c.answered);
    EXPECT_EQ(got.status, c.status) << c.remote << " " << c.sent << " " << c.answered;
    EXPECT_EQ(got.evidence, c.evidence) << c.remote;
  }
}

}  // namespace
}  // namespace tether::cli
