// A single-threaded poll(2) event loop: descriptors, one-shot timers, signals and a
// hook that runs after every wake-up. Portable POSIX (no epoll/signalfd) so the laptop
// side builds on macOS too.
//
// Threading: every method must be called from the thread that runs Run(), except
// Stop(), which is async-signal-safe.
#pragma once

#include <poll.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tether::net {

enum Interest : unsigned { kNone = 0, kReadable = 1, kWritable = 2 };
// What poll reported, in the handler's `events`: kReadable, kWritable, and kHangup for
// POLLERR/POLLHUP/POLLNVAL (a handler should then read or write to learn the error).
inline constexpr unsigned kHangup = 4;

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using FdHandler = std::function<void(unsigned events)>;
  using TimerId = uint64_t;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registers (or replaces) the handler for `fd`. A handler may Watch/Unwatch any fd,
  // including its own, while it runs; an fd unwatched during a dispatch round is not
  // called again in that round. An fd whose interest is kNone is left out of poll(2)
  // altogether, so its handler is not called at all: poll reports POLLHUP and POLLERR
  // whatever events were asked, and a hung-up descriptor nobody reads (stdin at EOF, a
  // pipe whose reader left) would otherwise wake the loop at once, every round.
  void Watch(int fd, unsigned interest, FdHandler handler);
  void SetInterest(int fd, unsigned interest);
  void Unwatch(int fd);

  // One-shot timer. The callback may add or cancel timers.
  TimerId AddTimer(std::chrono::milliseconds delay, std::function<void()> callback);
  void CancelTimer(TimerId id);

  // Runs after every wake-up (descriptors, timers), in registration order.
  void AddIterationHook(std::function<void()> hook);

  // Calls `handler(signo)` from the loop when one of `signals` arrives (self-pipe).
  Status HandleSignals(const std::vector<int>& signals, std::function<void(int)> handler);

  // Runs until Stop(). Returns an error only if poll(2) itself fails.
  Status Run();
  // One wake-up at most, waiting no longer than `max_wait`.
  Status RunOnce(std::chrono::milliseconds max_wait);
  void Stop() { stop_ = 1; }

 private:
  struct Watcher {
    unsigned interest;
    uint64_t generation;
    std::shared_ptr<FdHandler> handler;
  };
  struct Timer {
    std::function<void()> callback;
  };

  void FireDueTimers();
  std::chrono::milliseconds TimeToNextTimer(std::chrono::milliseconds cap) const;

  std::unordered_map<int, Watcher> watchers_;
  std::map<std::pair<Clock::time_point, TimerId>, Timer> timers_;
  std::unordered_map<TimerId, Clock::time_point> timer_deadlines_;
  std::vector<std::function<void()>> hooks_;
  std::vector<pollfd> pollfds_;
  uint64_t next_generation_ = 1;
  TimerId next_timer_id_ = 1;
  volatile sig_atomic_t stop_ = 0;

  UniqueFd signal_read_;
  std::function<void(int)> signal_handler_;
};

}  // namespace tether::net
