// What a channel's reads share, forwards (ssh/channel.h) and sessions (ssh/session_channel.h)
// alike: when to send the server a window adjustment, and how long it left us waiting.
//
// libssh grants window only from a read: ssh_channel_read_timeout(..., count, ...) raises
// the receive window to `count` minus what is buffered. WindowGrant picks that count: the
// whole window when a quarter of it has been used (or it was never granted), otherwise
// exactly what is buffered, which leaves the window alone. A quarter rather than OpenSSH's
// half keeps the sender's usable window nearer the whole: one download at 200 ms RTT went
// from 1041 to 1326 Mbit/s with a 64 MiB window, for one adjustment per 512 KiB at 2 MiB.
// A smaller window than the last one granted takes effect as the server uses it up.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace tether::ssh {

class WindowGrant {
 public:
  // The count to ask a read for, at most `cap`, when `buffered` bytes wait in libssh and
  // `window` is the receive window to keep.
  uint32_t Count(uint32_t window, size_t buffered, size_t cap) {
    size_t count;
    if (granted_ < window || consumed_since_grant_ >= window / 4) {
      count = window;
      granted_ = window;
      consumed_since_grant_ = 0;
    } else {
      count = std::max<size_t>(buffered, 1);
    }
    return static_cast<uint32_t>(std::min(count, cap));
  }
  void Consumed(size_t bytes) { consumed_since_grant_ += bytes; }

 private:
  uint64_t consumed_since_grant_ = 0;
  uint32_t granted_ = 0;
};

// The longest time the server left the channel waiting for data: from a read that found
// nothing to the next data.
class StallMeter {
 public:
  using Clock = std::chrono::steady_clock;
  void Empty(Clock::time_point now) {
    if (waiting_) return;
    waiting_ = true;
    empty_since_ = now;
  }
  void Data(Clock::time_point now) {
    if (!waiting_) return;
    waiting_ = false;
    longest_ = std::max(longest_, now - empty_since_);
  }
  // The longest wait since the last call. Resets it.
  Clock::duration Take() {
    auto longest = longest_;
    longest_ = {};
    return longest;
  }

 private:
  bool waiting_ = false;
  Clock::time_point empty_since_{};
  Clock::duration longest_{};
};

}  // namespace tether::ssh
