// The optional lease: "keep this server for N more hours, then run my command once"
// (typically a shutdown, or stopping a paid instance). Off unless a command is configured.
//
// Lease is the pure rule over times the caller passes in (tests drive it by table);
// LeaseKeeper adds the lock, the clock, the watcher thread and the command.
//
// Rules:
// - Enabled only with a command. Armed from the start when an initial length is given,
//   else by the first Extend: a configured command never runs before someone set a time.
// - Extend(d) adds d to what remains (or to now, once expired or unarmed). The total that
//   remains may not exceed kMaxRemaining: refused with a reason, not clamped.
// - Expiry fires the command once and disarms. A later Extend starts a new lease, which
//   fires again when it runs out.
// - Times are steady-clock: changing the wall clock neither ends nor prolongs a lease.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"

namespace tether::agent {

class Lease {
 public:
  using Clock = std::chrono::steady_clock;
  using Millis = std::chrono::milliseconds;
  // A month: longer than any job we have seen booked, short enough that a typo in hours
  // (2000 instead of 20) is refused rather than keeping a paid machine for a quarter.
  static constexpr Millis kMaxRemaining = std::chrono::hours(24 * 30);

  // A disabled lease: Extend fails, nothing ever fires.
  Lease() = default;
  // An enabled lease, armed for `initial` from `now` when given.
  Lease(std::optional<Millis> initial, Clock::time_point now);

  bool enabled() const { return enabled_; }
  bool armed() const { return expiry_.has_value(); }
  // Time left (zero once due); nullopt when not armed.
  std::optional<Millis> Remaining(Clock::time_point now) const;
  // How many times the lease has run out.
  int expirations() const { return expirations_; }

  Status Extend(Millis by, Clock::time_point now);
  // True exactly once per expiry: the caller runs the command. Disarms the lease.
  bool TakeExpiry(Clock::time_point now);

 private:
  bool enabled_ = false;
  std::optional<Clock::time_point> expiry_;
  int expirations_ = 0;
};

// What /lease and /status report.
struct LeaseSnapshot {
  bool enabled = false;
  bool armed = false;
  std::optional<std::chrono::milliseconds> remaining;
  std::optional<std::chrono::system_clock::time_point> expires_at;  // wall-clock estimate
  int expirations = 0;
  std::string command;
  std::optional<pid_t> running_pid;   // the command, while it runs
  std::optional<int> last_exit_code;  // shell-style, once a run has ended
};

struct LeaseConfig {
  std::string command;  // empty: the lease is off
  std::optional<std::chrono::milliseconds> initial;
  // How often the watcher looks at the clock: the command runs at most this late.
  std::chrono::milliseconds tick{1000};
};

// Thread-safe. Start() runs the watcher thread (only when enabled); Stop() or the
// destructor ends it without waiting for a command that is still running.
class LeaseKeeper {
 public:
  using NowFn = std::function<Lease::Clock::time_point()>;
  // Starts the command; returns its pid. Replaceable for tests.
  using SpawnFn = std::function<Result<pid_t>(const std::string& command)>;
  using LogFn = std::function<void(const std::string& line)>;

  LeaseKeeper(LeaseConfig config, LogFn log, NowFn now = Lease::Clock::now, SpawnFn spawn = {});
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  bool enabled() const { return lease_.enabled(); }
  void Start();
  void Stop();

  LeaseSnapshot Snapshot() const;
  Result<LeaseSnapshot> Extend(std::chrono::milliseconds by);
  // One watcher step: fire if due, reap a finished command. The thread calls it every
  // tick; tests with a fake clock call it directly.
  void Poll();

 private:
  LeaseSnapshot SnapshotLocked() const;
  void Run();

  const LeaseConfig config_;
  const LogFn log_;
  const NowFn now_;
  const SpawnFn spawn_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  Lease lease_;
  std::optional<pid_t> running_pid_;
  std::optional<int> last_exit_code_;
  std::thread thread_;
};

}  // namespace tether::agent
