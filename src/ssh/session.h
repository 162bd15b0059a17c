// One authenticated SSH connection to a host, built on libssh.
//
// Connect() blocks (resolve, TCP connect, key exchange, host key, authentication) and
// may prompt through the Prompter; it runs before the event loop or off it. The ready
// session is then switched to non-blocking and handed to one event-loop thread, which
// alone touches it and its channels from then on (libssh's rule).
#pragma once

#include <libssh/libssh.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "config/ssh_config.h"
#include "ssh/prompter.h"
#include "ssh/read_ahead.h"

namespace tether::ssh {

struct ConnectOptions {
  int log_verbosity = 0;  // libssh's SSH_LOG_* level, from -v
  bool probe = true;      // run the `uname -sm` probe after login (not for jump hosts)
  // When set, bounds the TCP connect alone (ConnectTimeout still bounds the handshake).
  // Reconnects use a short one: a SYN lost in a dead network is retransmitted only after
  // 1, 2, 4 s..., and the daemon would rather try again as soon as the path is back.
  std::chrono::milliseconds tcp_connect_timeout{0};
  // A TCP connection to the first hop that is already made (the daemon's reachability
  // probe): used instead of a connect of our own, once. The connection that found the
  // server is then the one that logs in: OpenSSH 9.8+ (PerSourcePenalties) counts every
  // connection that closes without authenticating against the client's address, and
  // refuses the address once enough add up. Shared because options are copied to the
  // thread that connects; whoever connects first takes the socket.
  std::shared_ptr<UniqueFd> first_hop_socket;
};

class JumpRelay;

class Session {
 public:
  // Closes the session, then the jump hosts it runs through.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Errors name the host and the step (resolve, connect, handshake, host key, auth)
  // and say what to do.
  // Through host.jump_chain when it has hops, each one checked and authenticated like a
  // destination of its own.
  static Result<std::unique_ptr<Session>> Connect(const config::HostConfig& host,
                                                  Prompter& prompter,
                                                  const ConnectOptions& options);

  ssh_session raw() const { return session_; }
  // Stops and restarts the threads of the jump hosts this session runs through (see
  // JumpRelay::Pause): around fork(), in the process that connected.
  void PauseRelays();
  void ResumeRelays();
  int fd() const { return ssh_get_fd(session_); }
  // Non-blocking mode for the event loop. The socket itself stays blocking: libssh
  // treats EAGAIN from send() as fatal, and writes only after poll reports POLLOUT.
  void SetNonBlocking();
  // From now on libssh gets the socket's bytes from reads of up to 256 KiB rather than
  // 4 KiB, if the process's ssh::ReadAheadStatus() is active (ssh/read_ahead.h). Polls of the
  // session must then run inside a ReadAhead::Scope and go on until read_ahead_pending() is 0. Once
  // connected.
  void EnableReadAhead();
  size_t read_ahead_pending() const { return read_ahead_ ? read_ahead_->pending() : 0; }
  // Lets libssh take in what has arrived: polls `event` (which holds this session) without
  // waiting, up to `max_polls` times while there is something to read, each poll taking
  // at most 4 KiB, then on until the read-ahead is empty.
  void Drain(ssh_event event, int max_polls);
  bool IsConnected() const { return ssh_is_connected(session_) != 0; }
  // True when libssh holds output that waits for the socket to become writable.
  bool WantsWrite() const { return (ssh_get_poll_flags(session_) & SSH_WRITE_PENDING) != 0; }
  std::string LastError() const { return ssh_get_error(session_); }
  const std::string& cipher() const { return cipher_; }
  const std::string& auth_method() const { return auth_method_; }
  // `uname -sm` of the server ("Linux x86_64"), or empty when the probe failed.
  const std::string& remote_system() const { return remote_system_; }

 private:
  explicit Session(ssh_session s);
  Status Authenticate(const config::HostConfig& host, Prompter& prompter);
  // Runs `uname -sm` once. Besides telling us the server's system, a session channel
  // makes sshd switch TCP_NODELAY on for the whole connection (it does so only when a
  // session starts): without it a forward-only connection uploads at about half speed
  // on long links (DESIGN.md). Failure is not fatal (ForceCommand, restricted shells).
  void Probe();

  ssh_session session_;
  std::unique_ptr<JumpRelay> relay_;  // the jump host we run through, if any
  std::unique_ptr<ReadAhead> read_ahead_;
  std::string cipher_;
  std::string auth_method_;
  std::string remote_system_;
};

}  // namespace tether::ssh
