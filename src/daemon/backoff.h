// Reconnect delays: exponential from kInitial up to kMax, with jitter so that many
// laptops waking at once do not hammer one login node in step. Pure logic.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace tether::daemon {

class Backoff {
 public:
  using Millis = std::chrono::milliseconds;
  // 0.5 s: a link that flapped comes back fast; 30 s: a laptop offline for hours does
  // not spin.
  static constexpr Millis kInitial{500};
  static constexpr Millis kMax{30000};
  static constexpr double kFactor = 2.0;
  static constexpr double kJitter = 0.2;  // each delay is scaled by a random 0.8..1.2

  explicit Backoff(uint64_t seed = std::random_device{}()) : rng_(seed) {}

  // The delay before the next attempt; each call grows the following one.
  Millis Next();
  // After a success: the next delay is kInitial again.
  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  std::mt19937_64 rng_;
  int attempts_ = 0;
};

}  // namespace tether::daemon
