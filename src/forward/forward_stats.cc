#include "forward/forward_stats.h"

namespace tether::forward {

void RateMeter::Sample(Clock::time_point now, ForwardStats& stats) {
  uint64_t in = stats.bytes_in.load(std::memory_order_relaxed);
  uint64_t out = stats.bytes_out.load(std::memory_order_relaxed);
  points_.push_back(Point{now, in, out});
  // Keep one point at or before the span's start, so the rate covers the whole span.
  while (points_.size() > 2 && now - points_[1].at >= kSpan) points_.pop_front();
  const Point& first = points_.front();
  double seconds = std::chrono::duration<double>(now - first.at).count();
  if (seconds <= 0) {
    stats.rate_in_bps = 0;
    stats.rate_out_bps = 0;
    return;
  }
  // Counters only grow; a smaller one would be a new forward under the same meter.
  stats.rate_in_bps = in >= first.in ? static_cast<double>(in - first.in) / seconds : 0;
  stats.rate_out_bps = out >= first.out ? static_cast<double>(out - first.out) / seconds : 0;
}

}  // namespace tether::forward
