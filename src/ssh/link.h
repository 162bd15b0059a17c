// A Link: one SSH connection driven by an event loop. It owns the session, the libssh
// event that polls it, the loop's watch on its socket, the write interest that libssh's
// pending output needs, and the socket's byte counters. The daemon's main connection,
// its lanes and the connections opened past MaxSessions are each one Link, so "drive a
// session on a loop" is written once.
//
// Threading: the thread that runs `loop`, from Open() to the destructor (libssh's rule:
// one thread owns a session and its channels).
#pragma once

#include <libssh/libssh.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "net/event_loop.h"
#include "ssh/session.h"

namespace tether::ssh {

// libssh takes at most 4 KiB per poll of the session: drain up to this many polls per
// wake-up (1 MiB, plus what the read-ahead still holds) before serving the channels, so
// one busy link cannot starve the rest.
inline constexpr int kMaxSessionPollsPerWake = 256;

class Link {
 public:
  struct Options {
    // Reads of up to 256 KiB instead of libssh's 4 KiB (see Session::EnableReadAhead).
    bool read_ahead = false;
    // A blocking write into a dead path fails within this (send timeout and
    // TCP_USER_TIMEOUT); zero leaves the socket as it is.
    std::chrono::milliseconds dead_after{0};
  };

  // Takes a connected session: makes it non-blocking, puts it on its own event and
  // watches its socket on `loop`. Every time the socket is readable the link drains the
  // session, then calls `on_input` (which may destroy the link: it is the last thing
  // done). `loop` must outlive the link.
  static Result<std::unique_ptr<Link>> Open(net::EventLoop& loop, std::unique_ptr<Session> session,
                                            const Options& options, std::function<void()> on_input);
  // Stops watching the socket, then closes the session.
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  Session& session() { return *session_; }
  const Session& session() const { return *session_; }
  ssh_session raw() const { return session_->raw(); }
  bool connected() const { return session_->IsConnected(); }
  // Why the connection ended: libssh's last error, or that the server closed it.
  std::string EndReason() const;
  // Bytes read from the socket since the link opened (keepalive accounting: any byte
  // from the server is life).
  uint64_t bytes_in() const { return counter_.in_bytes; }
  // Lets libssh take in what has arrived (see Session::Drain); the readable handler does
  // it, callers only when they must poll outside a wake-up.
  void Drain();
  // Asks the loop for writability while libssh holds output for the socket, and stops
  // asking once it is flushed. After every round of the loop.
  void UpdateWriteInterest();

 private:
  Link(net::EventLoop& loop, std::unique_ptr<Session> session, ssh_event event);

  net::EventLoop& loop_;
  std::unique_ptr<Session> session_;
  ssh_event event_;
  int fd_;
  ssh_counter_struct counter_{};
  bool wants_write_ = false;
};

}  // namespace tether::ssh
