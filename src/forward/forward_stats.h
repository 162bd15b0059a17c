// Live counters of one forward, read by `tether status`, and the rate meter that turns
// byte counters sampled on the daemon's tick into a current rate.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>

namespace tether::forward {

// The counters are atomic: streams on a lane (daemon/lane.h) count from the lane's
// thread. The rates are written on the daemon's loop thread only.
struct ForwardStats {
  std::atomic<uint64_t> live{0};    // connections being served now
  std::atomic<uint64_t> total{0};   // connections accepted since start
  std::atomic<uint64_t> failed{0};  // connections the far side refused to open
  // Connections refused because the listener was at a cap (forward/listener_limits.h):
  std::atomic<uint64_t> refused_connections{0};  // over the open connections' cap
  std::atomic<uint64_t> refused_handshakes{0};   // over the cap of handshakes in progress
  std::atomic<uint64_t> handshake_timeouts{0};   // closed: no target named in time
  // Refused by the owner check (forward/owner_check.h): another account's, or whose it
  // is could not be told. Neither accepted nor failed.
  std::atomic<uint64_t> refused_owner{0};
  std::atomic<uint64_t> bytes_in{0};   // server -> laptop
  std::atomic<uint64_t> bytes_out{0};  // laptop -> server
  double rate_in_bps = 0;              // bytes per second over the last RateMeter::kSpan
  double rate_out_bps = 0;
};

// Current rate over a sliding span of samples. A span of 2 s smooths the tick's jitter
// and still shows a stall within a couple of seconds. Pure: the caller passes the clock.
class RateMeter {
 public:
  static constexpr std::chrono::milliseconds kSpan{2000};
  using Clock = std::chrono::steady_clock;

  // Records the counters at `now` and updates stats.rate_*_bps.
  void Sample(Clock::time_point now, ForwardStats& stats);

 private:
  struct Point {
    Clock::time_point at;
    uint64_t in;
    uint64_t out;
  };
  std::deque<Point> points_;
};

}  // namespace tether::forward
