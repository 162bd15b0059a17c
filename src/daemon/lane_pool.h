// The lanes of one daemon (daemon/lane.h): how many are wanted, opening the missing ones,
// retiring those whose connection ended, and where a new -L/-D stream runs. The daemon
// says when lanes may open (its link is up and a forward could use them); the pool keeps
// the rest. Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/ssh_config.h"
#include "daemon/lane.h"
#include "forward/pump_set.h"
#include "forward/window_budget.h"
#include "ssh/session.h"

namespace tether::daemon {

// Most lanes a daemon opens, and how long it waits before opening one again after one
// failed to connect or lost its connection.
inline constexpr int kMaxLanes = 8;
inline constexpr std::chrono::seconds kLaneRetry{30};
// Lanes when neither the command line nor config.toml says: none below 4 cores, then one
// per 2 cores past the first 2, at most 3 (see the measurements in lane_pool.cc).
int DefaultLanes();

// One lane as `status` shows it.
struct LaneStatus {
  int number = 0;
  Lane::State state = Lane::State::kConnecting;
  uint64_t live = 0;
  uint64_t streams = 0;
  std::string error;
};

class LanePool {
 public:
  // `budget` is the daemon's (every lane's pumps draw on it) and must outlive the pool.
  LanePool(std::string host_alias, forward::WindowBudget& budget);
  // Stops every lane and waits for their threads, bounded by their connects' timeouts.
  ~LanePool();
  LanePool(const LanePool&) = delete;
  LanePool& operator=(const LanePool&) = delete;

  void SetWanted(int lanes);
  int wanted() const { return wanted_; }
  // Why lanes stay off (a lane could not log in without a prompt), "" otherwise.
  const std::string& off() const { return off_; }

  // Opens the lanes still missing, connecting to `host` with `options`; a lane's write
  // that makes no progress for `dead_after` fails it. Nothing while lanes are off or a
  // retry is not yet due.
  void Ensure(std::chrono::steady_clock::time_point now, const config::HostConfig& host,
              const ssh::ConnectOptions& options, std::chrono::milliseconds dead_after);
  // Retires lanes whose connection ended: an auth or host-key failure turns lanes off,
  // anything else is retried after kLaneRetry. Joins retired lanes whose thread ended.
  void Check(std::chrono::steady_clock::time_point now);
  // Stops every lane (the link is lost); their threads end off the loop.
  void RetireAll();
  // Hands `stream` to the least busy lane that is up, if it carries fewer live streams
  // than `main_load` (the main connection's); false, stream untouched, otherwise.
  bool Place(forward::NewStream& stream, uint64_t main_load);
  std::vector<LaneStatus> Status() const;

 private:
  const std::string alias_;
  forward::WindowBudget& budget_;
  int wanted_ = 0;
  int next_number_ = 1;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::vector<std::unique_ptr<Lane>> retiring_;  // told to stop, thread not yet ended
  std::chrono::steady_clock::time_point retry_at_{};
  std::string off_;
};

}  // namespace tether::daemon
