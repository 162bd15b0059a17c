// doctor's clock check: how far the server's clock is from the laptop's, judged from one
// `date` on the server between two readings of the laptop's clock. Pure.
#pragma once

#include <string>

namespace tether::cli {

// Below this the clocks count as in step; from it a warning, from kClockFailS a failure
// (past a minute TLS, Kerberos, make and token expiry start to notice).
inline constexpr double kClockWarnS = 2.0;
inline constexpr double kClockFailS = 60.0;

struct ClockCheck {
  std::string status;    // "pass", "warn" or "fail"
  std::string evidence;  // "the server's clock is +0.01 s from the laptop's", ...
};

// `remote`: the server's time as `date +%s.%N` printed it; `sent` and `answered`: the
// laptop's time (seconds since the epoch) when the command was sent and when its answer
// came. The server read its clock somewhere in between (after its shell rc, which can take
// seconds), so the offset lies in [remote - answered, remote - sent]: the verdict goes by
// the end of that range nearest zero, and a wide range is said.
ClockCheck JudgeClock(double remote, double sent, double answered);

}  // namespace tether::cli
