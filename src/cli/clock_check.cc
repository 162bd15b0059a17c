#include "cli/clock_check.h"

#include <cstdio>

namespace tether::cli {

ClockCheck JudgeClock(double remote, double sent, double answered) {
  const double lo = remote - answered;
  const double hi = remote - sent;
  const double least = lo > 0 ? lo : hi < 0 ? -hi : 0;
  ClockCheck out;
  char text[160];
  std::snprintf(text, sizeof text, "the server's clock is %+.2f s from the laptop's",
                (lo + hi) / 2);
  out.evidence = text;
  if (hi - lo > kClockWarnS) {
    std::snprintf(text, sizeof text, " (+-%.2f s: the command took %.2f s)", (hi - lo) / 2,
                  hi - lo);
    out.evidence += text;
  }
  out.status = least < kClockWarnS ? "pass" : least < kClockFailS ? "warn" : "fail";
  return out;
}

}  // namespace tether::cli
