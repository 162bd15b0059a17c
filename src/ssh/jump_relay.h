// A jump host, done natively (DESIGN.md: libssh 0.10 would fork `ssh -W` for ProxyJump).
// The session to the jump host opens a direct-tcpip channel to the next host, and a
// thread relays bytes between that channel and one end of a socketpair; the session to
// the next host runs over the other end (SSH_OPTIONS_FD), so it never knows the
// difference. The relay thread alone touches the jump session and its channel from then
// on (libssh's one-thread rule); the owner only holds it and, at the end, stops it.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tether::ssh {

class Session;

// The channel's receive window and the relay's read size: OpenSSH's own 2 MiB, so a
// stream through the jump host runs as fast as through `ssh -J`.
inline constexpr size_t kJumpRelayWindow = 2u << 20;

class JumpRelay {
 public:
  // Opens the channel from `via` to host:port and starts relaying. Errors name the jump
  // host and the target. The returned relay owns `via`.
  static Result<std::unique_ptr<JumpRelay>> Open(std::unique_ptr<Session> via,
                                                 const std::string& via_alias,
                                                 const std::string& host, uint16_t port);
  // Stops the thread (woken at once), closes the channel and the jump session.
  ~JumpRelay();
  JumpRelay(const JumpRelay&) = delete;
  JumpRelay& operator=(const JumpRelay&) = delete;

  // Our end of the socketpair, for SSH_OPTIONS_FD: the next session takes it over.
  UniqueFd TakeSocket() { return std::move(outer_); }

  // fork() keeps only the calling thread: the relay (and the hops before it) stops
  // before `tether up` forks its daemon, at a point where no byte is in its hands, and
  // starts again in the daemon. Bytes wait in the kernel and in libssh meanwhile.
  void Pause();
  void Resume();

 private:
  JumpRelay() = default;
  void Run();
  void RunRounds();
  // Interrupts the thread's wait (after stop_ or pause_ is set).
  void Wake();

  std::unique_ptr<Session> via_;
  void* channel_ = nullptr;         // ssh_channel; kept opaque so libssh stays out of this header
  UniqueFd inner_;                  // the relay's end
  UniqueFd outer_;                  // the next session's end, until taken
  std::atomic<bool> stop_{false};   // for good: abort whatever it is doing
  std::atomic<bool> pause_{false};  // at the top of the next round
  UniqueFd wake_;                   // eventfd: Wake() writes, the thread's poll wakes
  std::thread thread_;
};

}  // namespace tether::ssh
