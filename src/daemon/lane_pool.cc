#include "daemon/lane_pool.h"

#include <algorithm>
#include <thread>

#include "common/log.h"

namespace tether::daemon {

int DefaultLanes() {
  // Measured on 2 cores with sshd on the same machine (bench/forward_throughput.sh,
  // bench/long_link.sh at RTT 0, 8 streams): a lane raised upload 20-40% and lowered
  // download 10-25%, both cores being busy already (sshd, tether and iperf3 share them).
  // With 4 cores or more, one lane per 2 cores past the first 2.
  unsigned cores = std::thread::hardware_concurrency();
  return cores < 4 ? 0 : static_cast<int>(std::min((cores - 2) / 2, 3u));
}

LanePool::LanePool(std::string host_alias, forward::WindowBudget& budget)
    : alias_(std::move(host_alias)), budget_(budget) {}

LanePool::~LanePool() {
  RetireAll();
  retiring_.clear();  // joins them, bounded by their connects' timeouts
}

void LanePool::SetWanted(int lanes) { wanted_ = std::clamp(lanes, 0, kMaxLanes); }

void LanePool::Ensure(std::chrono::steady_clock::time_point now, const config::HostConfig& host,
                      const ssh::ConnectOptions& options, std::chrono::milliseconds dead_after) {
  if (!off_.empty() || now < retry_at_) return;
  while (static_cast<int>(lanes_.size()) < wanted_) {
    int number = next_number_++;
    spdlog::info("[{}] opening lane {} (another connection for forwarded streams)", alias_, number);
    lanes_.push_back(std::make_unique<Lane>(number, host, options, dead_after, budget_));
  }
}

void LanePool::Check(std::chrono::steady_clock::time_point now) {
  for (auto it = lanes_.begin(); it != lanes_.end();) {
    Lane& lane = **it;
    if (lane.state() != Lane::State::kEnded) {
      ++it;
      continue;
    }
    ErrorCode code = lane.error_code();
    if (code == ErrorCode::kAuth || code == ErrorCode::kNeedsLogin || code == ErrorCode::kHostKey) {
      // Without a terminal a lane cannot answer a prompt: the main connection carries all.
      off_ = lane.error();
      spdlog::warn("[{}] lanes are off: {}", alias_, off_);
    } else {
      retry_at_ = now + kLaneRetry;
    }
    retiring_.push_back(std::move(*it));
    it = lanes_.erase(it);
  }
  std::erase_if(retiring_, [](const auto& lane) { return lane->finished(); });
}

void LanePool::RetireAll() {
  for (auto& lane : lanes_) {
    lane->RequestStop();
    retiring_.push_back(std::move(lane));
  }
  lanes_.clear();
}

bool LanePool::Place(forward::NewStream& stream, uint64_t main_load) {
  uint64_t least = main_load;
  Lane* best = nullptr;
  for (auto& lane : lanes_) {
    if (lane->state() != Lane::State::kUp) continue;
    uint64_t load = lane->live();
    if (load < least) {
      least = load;
      best = lane.get();
    }
  }
  return best != nullptr && best->Offer(stream);
}

std::vector<LaneStatus> LanePool::Status() const {
  std::vector<LaneStatus> out;
  for (const auto& lane : lanes_) {
    out.push_back(
        LaneStatus{lane->number(), lane->state(), lane->live(), lane->streams(), lane->error()});
  }
  return out;
}

}  // namespace tether::daemon
