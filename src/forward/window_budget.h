// A global cap on the receive windows granted to the server across all channels.
// A window, once granted, cannot be taken back: if a local reader stalls, libssh
// buffers up to the window for that channel. The budget bounds that memory.
#pragma once

#include <cstddef>

namespace tether::forward {

class WindowBudget {
 public:
  explicit WindowBudget(size_t limit_bytes) : limit_(limit_bytes) {}
  // Takes `bytes` from the budget if that fits; false otherwise.
  bool TryReserve(size_t bytes) {
    if (bytes > limit_ - used_) return false;  // no wrap-around: used_ <= limit_
    used_ += bytes;
    return true;
  }
  void Release(size_t bytes) { used_ = bytes > used_ ? 0 : used_ - bytes; }
  size_t used() const { return used_; }
  size_t limit() const { return limit_; }

 private:
  size_t limit_;
  size_t used_ = 0;
};

}  // namespace tether::forward
