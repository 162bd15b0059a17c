// A global cap on the receive windows granted to the server across all channels.
// A window, once granted, cannot be taken back: if a local reader stalls, libssh
// buffers up to the window for that channel. The budget bounds that memory.
// Thread-safe: the daemon's loop and its lanes (daemon/lane.h) share one budget.
#pragma once

#include <atomic>
#include <cstddef>

namespace tether::forward {

class WindowBudget {
 public:
  explicit WindowBudget(size_t limit_bytes) : limit_(limit_bytes) {}
  // Takes `bytes` from the budget if that fits; false otherwise.
  bool TryReserve(size_t bytes) {
    size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ - used) return false;  // no wrap-around: used <= limit_
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void Release(size_t bytes) {
    size_t used = used_.load(std::memory_order_relaxed);
    while (!used_.compare_exchange_weak(used, bytes > used ? 0 : used - bytes,
                                        std::memory_order_relaxed)) {
    }
  }
  size_t used() const { return used_.load(std::memory_order_relaxed); }
  size_t limit() const { return limit_; }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
};

}  // namespace tether::forward
