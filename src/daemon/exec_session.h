// One remote command (or shell, or subsystem) on a session channel of the daemon's
// connection, with the caller's stdin, stdout and stderr passed to us as descriptors
// (by a mux client: stock ssh, or tether exec/ssh). The command line goes to the server
// as given, run by the user's shell, as ssh does.
//
//   opening -> (pty) -> (env) -> exec -> running -> done
//
// Running, it moves stdin to the channel and the channel's stdout and stderr to their
// descriptors, with backpressure (the channel is read only when what it gave was
// written) and EOF passed on. The exit value is the command's exit status, 128+n for a
// signal n, 255 when the channel closed without either (as ssh).
//
// Through the runner, the same with one direct-streamlocal channel and the runner's
// frames (common/runner_wire.h) on it instead of a session's requests and streams.
//
// At rest it costs nothing: a descriptor is watched only while there is something to do
// with it (stdin until its EOF, stdout/stderr while output waits), so a command waiting
// on the server wakes the daemon only when the server sends. When stdout's reader is gone
// (EPIPE) the channel is closed, whether stdin ended or not, as ssh ends the command
// then: the command sees the failure on its next write. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/runner_wire.h"
#include "common/unique_fd.h"
#include "forward/receive_window.h"
#include "net/event_loop.h"
#include "ssh/session_channel.h"

namespace tether::daemon {

struct ExecRequest {
  std::string command;  // "" with !subsystem: an interactive shell
  bool subsystem = false;
  bool pty = false;
  std::string term;              // $TERM for the pty
  std::vector<std::string> env;  // NAME=value; the server may refuse them (AcceptEnv)
  // ssh -W: no command, a direct-tcpip channel to forward_host:forward_port between the
  // client's stdin and stdout (no stderr descriptor).
  bool stdio_forward = false;
  std::string forward_host;
  uint16_t forward_port = 0;
  // Run by the resident runner listening at this socket on the server (daemon/fast_exec.h)
  // rather than in a session: "" for a session. When the runner cannot take it (its socket
  // unreachable, a refusal), the request becomes a session's, nothing of its stdin read.
  std::string runner_socket;
  // Never by the runner (tether exec --session).
  bool force_session = false;
};

class ExecSession {
 public:
  // The channel is open and the command started (ok), or not (and why). `tty_failed`:
  // the pty was refused and the command runs without one.
  using Started = std::function<void(bool ok, const std::string& error, bool tty_failed)>;
  // The command ended; called once, after every byte of its output was written.
  using Finished = std::function<void(uint32_t exit_value)>;

  // Created parked: Rebind gives it the connection to run on. Its receive window grows as
  // a forward's does (forward/receive_window.h), drawn from `budget`, which must outlive it.
  ExecSession(net::EventLoop& loop, UniqueFd in, UniqueFd out, UniqueFd err, ExecRequest request,
              Started started, Finished finished, std::string log_prefix,
              forward::WindowBudget& budget);
  // Closes the channel (if still open) and gives the descriptors back in blocking mode.
  ~ExecSession();
  ExecSession(const ExecSession&) = delete;
  ExecSession& operator=(const ExecSession&) = delete;

  // Advances the state machine and moves bytes. Call after every wake-up.
  void Service();
  // The client's terminal changed size (SIGWINCH reached the daemon): sends it on.
  void WindowChanged();
  // The link is gone: ends with 255 and a word on stderr.
  void Abort(const std::string& why);
  // The client went away: no callback runs again, its descriptors are no longer watched,
  // and it is done. Safe from inside its own callbacks; the owner destroys it later, once
  // none of its calls is on the stack (never from within Started or Finished).
  void Detach();
  bool done() const { return state_ == State::kDone; }
  // Waiting for a connection: new, or refused by sshd's MaxSessions on the last one.
  bool parked() const { return state_ == State::kParked; }
  // Whether the last connection refused it for MaxSessions (not a real failure).
  bool refused_for_max_sessions() const { return refused_; }
  const std::string& refusal() const { return refusal_; }
  // Whether it counts against sshd's MaxSessions on its connection: a session channel
  // (not a stdio forward, a direct-tcpip channel) that sshd confirmed and that is not done.
  bool holds_session() const {
    return !request_.stdio_forward && !via_runner() && state_ != State::kParked &&
           state_ != State::kOpening && state_ != State::kDone;
  }
  // The same, counting a session channel whose open is still in flight.
  bool holds_or_opens_session() const {
    return !request_.stdio_forward && !via_runner() && state_ != State::kParked &&
           state_ != State::kDone;
  }
  // Whether it goes (still) by the runner.
  bool via_runner() const { return !request_.runner_socket.empty(); }
  // What went wrong with the runner since the last call ("" when nothing): it could not
  // take the command (the command fell back to a session) or went away mid-command.
  std::string TakeRunnerTrouble() { return std::exchange(runner_trouble_, ""); }
  // Whether the runner started the command since the last call (once per command).
  bool TakeRunnerStart() { return std::exchange(runner_started_, false); }
  // The variables the server took (AcceptEnv: true) and refused, from this session's env
  // requests since the last call.
  std::vector<std::pair<std::string, bool>> TakeEnvAnswers() {
    return std::exchange(env_answers_, {});
  }
  // Opens its channel on `session` (from parked).
  void Rebind(ssh_session session);
  // The connection it runs on (null while parked).
  ssh_session session() const { return session_; }

 private:
  enum class State { kParked, kOpening, kPty, kEnv, kExec, kRunnerWait, kRunning, kDone };
  void Fail(const std::string& why);
  // The runner cannot take it: parked again as a session's request.
  void FallBack(const std::string& why);
  // kRunnerWait: the runner's first answer. False while it is still awaited.
  bool AwaitRunner();
  bool MoveRunnerOutput();
  bool RunnerDone();
  void Finish();
  bool MoveInput();
  bool MoveOutput(bool is_stderr, UniqueFd& fd, std::string& pending, bool& eof, bool& failed);
  void UpdateInterest();
  bool TerminalSize(int* cols, int* rows) const;

  ssh_session session_ = nullptr;
  net::EventLoop& loop_;
  std::unique_ptr<ssh::SessionChannel> channel_;
  UniqueFd in_, out_, err_;
  int in_flags_ = -1, out_flags_ = -1, err_flags_ = -1;  // to restore
  ExecRequest request_;
  Started started_;
  Finished finished_;
  std::string log_prefix_;
  State state_ = State::kParked;
  bool refused_ = false;
  std::string refusal_;
  size_t env_index_ = 0;
  bool tty_failed_ = false;
  int cols_ = 0, rows_ = 0;

  forward::ReceiveWindow window_;
  uint64_t out_drained_ = 0;  // stdout bytes read from the channel

  std::string to_channel_;
  std::string to_out_, to_err_;
  bool in_eof_ = false, eof_sent_ = false;
  bool out_eof_ = false, err_eof_ = false;
  bool out_failed_ = false, err_failed_ = false;  // the reader went away: output dropped
  bool close_sent_ = false;

  // Through the runner.
  runner::FrameReader runner_frames_;
  std::optional<uint32_t> runner_exit_;
  bool runner_broken_ = false;  // closed early, or said nonsense
  bool runner_started_ = false;
  std::string runner_trouble_;
  std::vector<std::pair<std::string, bool>> env_answers_;
};

}  // namespace tether::daemon
