#include "net/event_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

namespace tether::net {
namespace {

// The write end of the self-pipe, shared by the async signal handler.
int g_signal_pipe_write = -1;

void OnSignal(int signo) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(signo);
  if (g_signal_pipe_write >= 0) {
    [[maybe_unused]] ssize_t n = ::write(g_signal_pipe_write, &byte, 1);
  }
  errno = saved;
}

}  // namespace

EventLoop::EventLoop() = default;

EventLoop::~EventLoop() {
  if (signal_read_) {
    ::close(g_signal_pipe_write);
    g_signal_pipe_write = -1;
  }
}

void EventLoop::Watch(int fd, unsigned interest, FdHandler handler) {
  watchers_[fd] =
      Watcher{interest, next_generation_++, std::make_shared<FdHandler>(std::move(handler))};
}

void EventLoop::SetInterest(int fd, unsigned interest) {
  auto it = watchers_.find(fd);
  if (it != watchers_.end()) it->second.interest = interest;
}

void EventLoop::Unwatch(int fd) { watchers_.erase(fd); }

EventLoop::TimerId EventLoop::AddTimer(std::chrono::milliseconds delay,
                                       std::function<void()> callback) {
  TimerId id = next_timer_id_++;
  auto deadline = Clock::now() + delay;
  timers_.emplace(std::make_pair(deadline, id), Timer{std::move(callback)});
  timer_deadlines_[id] = deadline;
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timer_deadlines_.erase(it);
}

void EventLoop::AddIterationHook(std::function<void()> hook) { hooks_.push_back(std::move(hook)); }

Status EventLoop::HandleSignals(const std::vector<int>& signals, std::function<void(int)> handler) {
  if (!signal_read_) {
    int fds[2];
    if (::pipe(fds) != 0) return ErrnoError("signals", "pipe", errno);
    for (int fd : fds) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    signal_read_.Reset(fds[0]);
    g_signal_pipe_write = fds[1];
    Watch(signal_read_.get(), kReadable, [this](unsigned) {
      unsigned char buf[64];
      ssize_t n;
      while ((n = ::read(signal_read_.get(), buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; ++i) {
          if (signal_handler_) signal_handler_(buf[i]);
        }
      }
    });
  }
  signal_handler_ = std::move(handler);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int signo : signals) {
    if (::sigaction(signo, &sa, nullptr) != 0) return ErrnoError("signals", "sigaction", errno);
  }
  return Status::Ok();
}

std::chrono::milliseconds EventLoop::TimeToNextTimer(std::chrono::milliseconds cap) const {
  if (timers_.empty()) return cap;
  auto wait =
      std::chrono::ceil<std::chrono::milliseconds>(timers_.begin()->first.first - Clock::now());
  if (wait < std::chrono::milliseconds(0)) return std::chrono::milliseconds(0);
  return wait < cap ? wait : cap;
}

void EventLoop::FireDueTimers() {
  auto now = Clock::now();
  // Bounded: timers added by callbacks with zero delay wait for the next round.
  std::vector<TimerId> due;
  for (auto& [key, timer] : timers_) {
    if (key.first > now) break;
    due.push_back(key.second);
  }
  for (TimerId id : due) {
    auto it = timer_deadlines_.find(id);
    if (it == timer_deadlines_.end()) continue;  // cancelled by an earlier callback
    auto node = timers_.extract(std::make_pair(it->second, id));
    timer_deadlines_.erase(it);
    node.mapped().callback();
  }
}

Status EventLoop::RunOnce(std::chrono::milliseconds max_wait) {
  pollfds_.clear();
  std::vector<uint64_t> generations;
  for (auto& [fd, w] : watchers_) {
    if (w.interest == kNone) continue;  // see Watch: hang-ups must not wake it
    short events = 0;
    if (w.interest & kReadable) events |= POLLIN;
    if (w.interest & kWritable) events |= POLLOUT;
    pollfds_.push_back(pollfd{fd, events, 0});
    generations.push_back(w.generation);
  }
  int timeout_ms = static_cast<int>(TimeToNextTimer(max_wait).count());
  int n = ::poll(pollfds_.data(), pollfds_.size(), timeout_ms);
  if (n < 0) {
    if (errno != EINTR) return ErrnoError("event loop", "poll", errno);
    n = 0;  // a signal: no descriptor events, but timers and hooks still run
  }
  for (size_t i = 0; i < pollfds_.size() && n > 0; ++i) {
    const pollfd& p = pollfds_[i];
    if (p.revents == 0) continue;
    --n;
    auto it = watchers_.find(p.fd);
    if (it == watchers_.end() || it->second.generation != generations[i]) continue;
    unsigned events = 0;
    if (p.revents & POLLIN) events |= kReadable;
    if (p.revents & POLLOUT) events |= kWritable;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) events |= kHangup;
    // Hold a reference: the handler may replace or remove its own watcher.
    std::shared_ptr<FdHandler> handler = it->second.handler;
    (*handler)(events);
  }
  FireDueTimers();
  for (size_t i = 0; i < hooks_.size(); ++i) hooks_[i]();
  return Status::Ok();
}

Status EventLoop::Run() {
  // Without timers, wake up now and then anyway: cheap, and it bounds the effect of
  // any missed wake-up to this interval.
  constexpr std::chrono::milliseconds kIdleWake{1000};
  while (!stop_) {
    Status s = RunOnce(kIdleWake);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace tether::net
