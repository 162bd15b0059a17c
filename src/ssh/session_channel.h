// A session channel (a command, a shell, a subsystem), or the direct-tcpip channel of
// ssh -W, driven step by step: each request answers done, again (the session is
// non-blocking and the server has not answered yet: call it again after a wake-up) or
// failed. On a blocking session every step answers done or failed.
//
// It keeps what the server says of the command's end (exit-status, exit-signal), which
// libssh reports only through callbacks. Only the thread that owns the session may call
// it, and the session must outlive it.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "ssh/window_grant.h"

namespace tether::ssh {

enum class Step { kDone, kAgain, kFailed };

// The local number of a signal as RFC 4254 names it in exit-signal ("TERM", no "SIG"),
// 0 for a name we do not know.
int SignalNumber(std::string_view name);

class SessionChannel {
 public:
  // Makes the channel object; nothing goes to the server until an Open. created() is
  // false when libssh could not make one (error() says why).
  explicit SessionChannel(ssh_session session);
  // Sends EOF and CLOSE if still open; libssh frees the channel once the peer's CLOSE is in.
  ~SessionChannel();
  SessionChannel(const SessionChannel&) = delete;
  SessionChannel& operator=(const SessionChannel&) = delete;

  bool created() const { return channel_ != nullptr; }

  // One of the opens, then (for a session channel) the requests, in ssh's order:
  // pty, env, then one of exec, shell, subsystem.
  Step OpenSession();
  // A direct-tcpip channel to host:port, as if from origin_host:origin_port.
  Step OpenForward(const std::string& host, uint16_t port, const std::string& origin_host,
                   uint16_t origin_port);
  // A direct-streamlocal channel to the unix socket at `path` on the server.
  Step OpenStreamLocal(const std::string& path);
  Step RequestPty(const std::string& term, int cols, int rows);
  // kFailed when the server refuses the variable (AcceptEnv): the command runs without it.
  Step RequestEnv(const std::string& name, const std::string& value);
  Step RequestExec(const std::string& command);
  Step RequestShell();
  Step RequestSubsystem(const std::string& name);
  // The terminal's new size (window-change); nothing is answered.
  void ChangePtySize(int cols, int rows);

  // Writes at most what the server's window allows. Returns the count taken: 0 when the
  // window is closed (try later) or the channel broken (IsClosed says which).
  size_t Write(const char* data, size_t len);
  // On a blocking session: writes all of `data`, waiting for the server's window as long
  // as the session's timeout allows.
  Status WriteAll(const std::string& data);
  // Copies up to `cap` bytes of stdout (or stderr) that arrived, without waiting. A read
  // of stdout keeps the receive window (shared by both streams) at `window` bytes, re-granted
  // as WindowGrant says; a read of stderr takes what is buffered and grants nothing. Returns
  // the count (0: nothing now), or an error when the channel is broken or closed by us.
  Result<size_t> Read(char* buf, size_t cap, bool is_stderr, uint32_t window);
  // The longest time the server left stdout waiting for data since the last call: from a
  // read that found nothing to the next that found some. Resets it.
  std::chrono::steady_clock::duration TakeLongestStall() { return stall_.Take(); }
  // Takes in what the session has received (no waiting) and says whether stdout (or
  // stderr) holds bytes to Read.
  bool HasPending(bool is_stderr);
  // Takes in what the session has received, without waiting, also after the server's EOF
  // (when HasPending and Read no longer do): its exit-status, exit-signal and close.
  void TakeIn();
  Status SendEof();
  void Close();
  bool IsEof() const;     // the server sent EOF
  bool IsClosed() const;  // closed by either side, or broken

  // The exit status the server sent, -1 before (or when it sent a signal instead).
  int exit_status() const { return exit_status_; }
  // The name of the signal that ended the command ("TERM"), "" when none came.
  const std::string& exit_signal() const { return exit_signal_; }
  // libssh's last error on the session. One string for the whole session: another
  // channel may have overwritten it since this one failed.
  std::string error() const;

 private:
  static void OnExitStatus(ssh_session, ssh_channel, int status, void* self);
  static void OnExitSignal(ssh_session, ssh_channel, const char* signal, int core,
                           const char* errmsg, const char* lang, void* self);

  ssh_session session_;
  ssh_channel channel_;
  ssh_channel_callbacks_struct callbacks_{};
  int exit_status_ = -1;
  std::string exit_signal_;
  WindowGrant grant_;
  StallMeter stall_;
};

}  // namespace tether::ssh
