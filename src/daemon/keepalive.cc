#include "daemon/keepalive.h"

#include <algorithm>

namespace tether::daemon {

Keepalive::Keepalive(Millis interval, int count_max, Clock::time_point now)
    : interval_(interval), count_max_(std::max(count_max, 1)), last_received_(now) {}

void Keepalive::OnReceived(Clock::time_point now) {
  if (probe_sent_ && probe_on_quiet_link_) {
    rtt_ = std::chrono::duration_cast<Millis>(now - *probe_sent_);
  }
  probe_sent_.reset();
  last_received_ = now;
}

Keepalive::Action Keepalive::Tick(Clock::time_point now) {
  auto quiet = now - last_received_;
  if (quiet >= dead_after()) return Action::kDead;
  if (quiet < interval_) return Action::kNone;
  // Quiet for an interval: probe, and probe again each interval without an answer.
  if (!probe_sent_ || now - *probe_sent_ >= interval_) {
    // Only a probe sent after a full quiet interval measures the round trip: with
    // traffic flowing, the next byte to arrive is not its answer.
    probe_on_quiet_link_ = !probe_sent_;
    probe_sent_ = now;
    return Action::kSendProbe;
  }
  return Action::kNone;
}

void Keepalive::Resume(Clock::time_point now) {
  // As if the link had been quiet for all intervals but the last: the next Tick probes,
  // and one interval without an answer is death. (With one allowed miss, the full one.)
  last_received_ = count_max_ > 1 ? now - interval_ * (count_max_ - 1) : now;
  probe_sent_.reset();
}

Keepalive::Clock::time_point Keepalive::NextTick() const {
  auto next = last_received_ + interval_;
  if (probe_sent_) next = std::max(next, *probe_sent_ + interval_);
  return std::min(next, last_received_ + dead_after());
}

}  // namespace tether::daemon
