#include "agent/lease.h"

#include <algorithm>

#include "agent/command.h"

namespace tether::agent {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

Lease::Lease(std::optional<Millis> initial, Clock::time_point now) : enabled_(true) {
  if (initial) expiry_ = now + std::min(*initial, kMaxRemaining);
}

std::optional<Lease::Millis> Lease::Remaining(Clock::time_point now) const {
  if (!expiry_) return std::nullopt;
  return std::max(Millis(0), duration_cast<Millis>(*expiry_ - now));
}

Status Lease::Extend(Millis by, Clock::time_point now) {
  if (!enabled_) {
    return MakeError("lease", "no lease on this agent",
                     "start tether-agent with --lease-command CMD (and --lease-hours N)");
  }
  if (by <= Millis(0)) return MakeError("lease", "the extension must be positive");
  Clock::time_point base = expiry_ && *expiry_ > now ? *expiry_ : now;
  if (base - now + by > kMaxRemaining) {
    const auto max_hours = std::chrono::duration_cast<std::chrono::hours>(kMaxRemaining);
    return MakeError(
        "lease",
        "a lease may not run more than " + std::to_string(max_hours.count()) + " hours ahead",
        "extend by fewer hours");
  }
  expiry_ = base + by;
  return Status::Ok();
}

bool Lease::TakeExpiry(Clock::time_point now) {
  if (!expiry_ || now < *expiry_) return false;
  expiry_.reset();
  ++expirations_;
  return true;
}

LeaseKeeper::LeaseKeeper(LeaseConfig config, LogFn log, NowFn now, SpawnFn spawn)
    : config_(std::move(config)),
      log_(log ? std::move(log) : LogFn([](const std::string&) {})),
      now_(std::move(now)),
      spawn_(spawn ? std::move(spawn) : SpawnFn(SpawnShell)) {
  if (!config_.command.empty()) lease_ = Lease(config_.initial, now_());
}

LeaseKeeper::~LeaseKeeper() { Stop(); }

void LeaseKeeper::Start() {
  if (!enabled() || thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void LeaseKeeper::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Poll();
    lock.lock();
    wake_.wait_for(lock, config_.tick, [this] { return stopping_; });
  }
}

void LeaseKeeper::Poll() {
  std::lock_guard lock(mu_);
  if (running_pid_) {
    if (auto code = ReapChild(*running_pid_)) {
      log_("lease command (pid " + std::to_string(*running_pid_) + ") exited with status " +
           std::to_string(*code));
      last_exit_code_ = code;
      running_pid_.reset();
    }
  }
  if (!lease_.TakeExpiry(now_())) return;
  log_("lease ran out: running: " + config_.command);
  auto pid = spawn_(config_.command);
  if (!pid) {
    log_("lease command did not start: " + pid.error().ToString());
    last_exit_code_ = 127;  // what a shell says for a command it cannot run
    return;
  }
  running_pid_ = *pid;
}

LeaseSnapshot LeaseKeeper::SnapshotLocked() const {
  LeaseSnapshot s;
  s.enabled = lease_.enabled();
  s.armed = lease_.armed();
  s.remaining = lease_.Remaining(now_());
  if (s.remaining) {
    s.expires_at = std::chrono::time_point_cast<std::chrono::system_clock::duration>(
        std::chrono::system_clock::now() + *s.remaining);
  }
  s.expirations = lease_.expirations();
  s.command = config_.command;
  s.running_pid = running_pid_;
  s.last_exit_code = last_exit_code_;
  return s;
}

LeaseSnapshot LeaseKeeper::Snapshot() const {
  std::lock_guard lock(mu_);
  return SnapshotLocked();
}

Result<LeaseSnapshot> LeaseKeeper::Extend(milliseconds by) {
  std::lock_guard lock(mu_);
  Status s = lease_.Extend(by, now_());
  if (!s) return s.take_error();
  return SnapshotLocked();
}

}  // namespace tether::agent
