// Accepts connections on a listening socket from the event loop, a bounded burst per
// wake-up, and rides out a full descriptor table.
//
// When accept(2) fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)
// the connection stays queued and the listener stays readable: watching it would wake the
// loop at once, every round, at 100% of a core, until a descriptor frees up. The acceptor
// stops watching for kAcceptPause instead and then tries again (sshd's listeners pause a
// second for the same reason). Queued clients wait; none is refused.
//
// Loop thread only. The listening descriptor stays the caller's and must outlive this;
// `on_connection` must not destroy the Acceptor.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "common/unique_fd.h"
#include "net/event_loop.h"

namespace tether::net {

// How long accepting pauses after a resource failure: at most 4 wake-ups a second while
// the table stays full, and a queued client waits at most this long once it is not.
inline constexpr std::chrono::milliseconds kAcceptPause{250};

class Acceptor {
 public:
  // Gets each accepted connection: non-blocking and close-on-exec.
  using OnConnection = std::function<void(UniqueFd connection)>;

  // Starts watching `listen_fd` at once. `log_name` names the listener in the log;
  // `burst` bounds the accepts per wake-up.
  Acceptor(EventLoop& loop, int listen_fd, std::string log_name, int burst,
           OnConnection on_connection);
  // Stops watching (and any pause's timer).
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  int fd() const { return fd_; }
  bool paused() const { return resume_timer_ != 0; }
  // How many times accepting paused so far.
  uint64_t pauses() const { return pauses_; }

 private:
  void OnReadable();
  void Pause(int error);
  void Resume();

  EventLoop& loop_;
  int fd_;
  std::string log_name_;
  int burst_;
  OnConnection on_connection_;
  EventLoop::TimerId resume_timer_ = 0;
  uint64_t pauses_ = 0;
  bool warned_ = false;  // this shortage was logged as a warning already
};

}  // namespace tether::net
