// Dead-peer detection for one SSH connection, as pure logic over a clock the caller
// passes in. Any byte received counts as life. When nothing has arrived for `interval`,
// a keepalive@openssh.com request (want-reply) goes out; the link is dead when nothing
// has arrived for `interval` x `count_max` (2 s x 3 by default: noticed within 6 s).
// A stream running at full speed keeps bytes (data or window adjustments) arriving, so
// it never raises a false alarm however long the round trip.
#pragma once

#include <chrono>
#include <optional>

namespace tether::daemon {

class Keepalive {
 public:
  using Clock = std::chrono::steady_clock;
  using Millis = std::chrono::milliseconds;
  static constexpr Millis kDefaultInterval{2000};
  static constexpr int kDefaultCountMax = 3;

  enum class Action { kNone, kSendProbe, kDead };

  Keepalive(Millis interval, int count_max, Clock::time_point now);

  // Bytes arrived at `now`. The first arrival after a probe on a quiet link gives the
  // round-trip time.
  void OnReceived(Clock::time_point now);
  // What to do now; kSendProbe means the caller sends one keepalive request.
  Action Tick(Clock::time_point now);
  // We were not running for a while (stopped, starved, asleep): the silence we measured
  // says nothing about the link. Judge it afresh: a probe goes out at the next Tick, and
  // the link is dead if nothing arrives within one interval.
  void Resume(Clock::time_point now);
  // When Tick should run next.
  Clock::time_point NextTick() const;

  std::optional<Millis> rtt() const { return rtt_; }
  Millis interval() const { return interval_; }
  Millis dead_after() const { return interval_ * count_max_; }

 private:
  Millis interval_;
  int count_max_;
  Clock::time_point last_received_;
  std::optional<Clock::time_point> probe_sent_;
  bool probe_on_quiet_link_ = false;
  std::optional<Millis> rtt_;
};

}  // namespace tether::daemon
