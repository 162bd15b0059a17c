#include "daemon/backoff.h"

#include <algorithm>
#include <cmath>

namespace tether::daemon {

Backoff::Millis Backoff::Next() {
  double base = static_cast<double>(kInitial.count()) *
                std::pow(kFactor, std::min(attempts_, 16));  // capped exponent: no overflow
  base = std::min(base, static_cast<double>(kMax.count()));
  std::uniform_real_distribution<double> jitter(1.0 - kJitter, 1.0 + kJitter);
  double delay = std::min(base * jitter(rng_), static_cast<double>(kMax.count()));
  ++attempts_;
  return Millis(static_cast<int64_t>(delay));
}

}  // namespace tether::daemon
