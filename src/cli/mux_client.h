// The client side of OpenSSH's mux protocol, for tether exec, ssh and run: connect to a
// daemon's HOST.mux, say hello, learn its pid, and run one session with our descriptors,
// the way `ssh -S` does. Blocking, every wait bounded except the session itself.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "control/mux_codec.h"

namespace tether::cli {

class MuxClient {
 public:
  // Connects, exchanges hellos and asks for the daemon's pid.
  static Result<MuxClient> Connect(const std::string& path);

  pid_t daemon_pid() const { return pid_; }
  // Opens a session with `in`, `out`, `err` as its stdio. Returns once the server said it
  // runs (or why not); *tty_failed when the pty was refused.
  Status OpenSession(const control::mux::NewSession& request, int in, int out, int err);
  // Waits for the session's end: its exit value; 255 when the daemon went away first.
  uint32_t WaitForExit(bool* tty_failed);

 private:
  Status Send(const std::string& payload);
  Result<control::mux::ServerMessage> Receive(int timeout_ms);
  Status SendFd(int fd);

  UniqueFd fd_;
  std::string in_;
  pid_t pid_ = 0;
  uint32_t session_ = 0;
  bool tty_failed_ = false;
};

}  // namespace tether::cli
