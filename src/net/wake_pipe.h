// A self-pipe that lets another thread wake an event loop: Wake() from any thread,
// Drain() from the loop's handler for read_fd(). Both ends are non-blocking and
// close-on-exec, so a burst of wakes never blocks the waker.
#pragma once

#include "common/unique_fd.h"

namespace tether::net {

class WakePipe {
 public:
  WakePipe();
  WakePipe(const WakePipe&) = delete;
  WakePipe& operator=(const WakePipe&) = delete;

  // False when the pipe could not be made (out of descriptors).
  bool valid() const { return read_.valid() && write_.valid(); }
  int read_fd() const { return read_.get(); }
  // Any thread; async-signal-safe.
  void Wake() const;
  // Empties the pipe (on the loop's thread).
  void Drain() const;

 private:
  UniqueFd read_;
  UniqueFd write_;
};

}  // namespace tether::net
