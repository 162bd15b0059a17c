#include "daemon/exec_session.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace tether::daemon {
namespace {

constexpr uint32_t kExitLinkLost = 255;

int MakeNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return flags;
}

void Restore(int fd, int flags) {
  if (fd >= 0 && flags >= 0) ::fcntl(fd, F_SETFL, flags);
}

bool WouldBlock() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

int SignalNumber(const char* name) {
  static const std::pair<const char*, int> kSignals[] = {
      {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"FPE", SIGFPE},   {"HUP", SIGHUP},   {"ILL", SIGILL},
      {"INT", SIGINT},   {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},
      {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
  for (const auto& [n, v] : kSignals) {
    if (name != nullptr && std::strcmp(name, n) == 0) return v;
  }
  return 0;
}

}  // namespace

ExecSession::ExecSession(net::EventLoop& loop, UniqueFd in, UniqueFd out, UniqueFd err,
                         ExecRequest request, Started started, Finished finished,
                         std::string log_prefix)
    : loop_(loop),
      in_(std::move(in)),
      out_(std::move(out)),
      err_(std::move(err)),
      request_(std::move(request)),
      started_(std::move(started)),
      finished_(std::move(finished)),
      log_prefix_(std::move(log_prefix)) {
  // Non-blocking like ssh's own mux master (CHANNEL_NONBLOCK_STDIO); the flags go back
  // when we are done, since the descriptions are shared with the client.
  in_flags_ = MakeNonBlocking(in_.get());
  out_flags_ = MakeNonBlocking(out_.get());
  if (err_) err_flags_ = MakeNonBlocking(err_.get());
  // Watched only for wake-ups, and only while UpdateInterest asks; Service does the work.
  loop_.Watch(in_.get(), net::kNone, [this](unsigned) { Service(); });
  if (out_.get() != in_.get()) loop_.Watch(out_.get(), net::kNone, [this](unsigned) { Service(); });
  if (err_ && err_.get() != in_.get() && err_.get() != out_.get()) {
    loop_.Watch(err_.get(), net::kNone, [this](unsigned) { Service(); });
  }
}

ExecSession::~ExecSession() {
  for (int fd : {in_.get(), out_.get(), err_.get()}) {
    if (fd >= 0) loop_.Unwatch(fd);
  }
  // Unwatching twice (after Detach) is harmless: the descriptors are still ours, so their
  // numbers cannot belong to anyone else yet.
  if (channel_ != nullptr) {
    ssh_remove_channel_callbacks(channel_, &callbacks_);
    ssh_channel_free(channel_);  // sends EOF and CLOSE if still open
  }
  // In reverse: when they share one description, the first flags we saw were the
  // original ones, and they are restored last.
  Restore(err_.get(), err_flags_);
  Restore(out_.get(), out_flags_);
  Restore(in_.get(), in_flags_);
}

void ExecSession::Rebind(ssh_session session) {
  if (channel_ != nullptr) {
    ssh_remove_channel_callbacks(channel_, &callbacks_);
    ssh_channel_free(channel_);
    channel_ = nullptr;
  }
  session_ = session;
  refused_ = false;
  channel_ = ssh_channel_new(session_);
  if (channel_ == nullptr) {
    Fail("cannot create a channel");
    return;
  }
  ssh_callbacks_init(&callbacks_);
  callbacks_.userdata = this;
  callbacks_.channel_exit_status_function = &ExecSession::OnExitStatus;
  callbacks_.channel_exit_signal_function = &ExecSession::OnExitSignal;
  ssh_set_channel_callbacks(channel_, &callbacks_);
  state_ = State::kOpening;
}

void ExecSession::OnExitStatus(ssh_session, ssh_channel, int status, void* self) {
  static_cast<ExecSession*>(self)->exit_status_ = status;
}

void ExecSession::OnExitSignal(ssh_session, ssh_channel, const char* signal, int, const char*,
                               const char*, void* self) {
  static_cast<ExecSession*>(self)->exit_signal_ = SignalNumber(signal);
  if (static_cast<ExecSession*>(self)->exit_signal_ == 0) {
    static_cast<ExecSession*>(self)->exit_signal_ = SIGTERM;  // unknown name: still a signal
  }
}

bool ExecSession::TerminalSize(int* cols, int* rows) const {
  winsize ws{};
  if (::ioctl(in_.get(), TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return false;
  *cols = ws.ws_col;
  *rows = ws.ws_row;
  return true;
}

void ExecSession::WindowChanged() {
  if (state_ != State::kRunning || !request_.pty || channel_ == nullptr) return;
  int cols, rows;
  if (!TerminalSize(&cols, &rows) || (cols == cols_ && rows == rows_)) return;
  cols_ = cols;
  rows_ = rows;
  ssh_channel_change_pty_size(channel_, cols, rows);
}

void ExecSession::Fail(const std::string& why) {
  spdlog::warn("[{}] {}", log_prefix_, why);
  state_ = State::kDone;
  if (started_) {
    auto started = std::move(started_);
    started_ = nullptr;
    started(false, why, false);
  }
}

void ExecSession::Abort(const std::string& why) {
  if (state_ == State::kDone) return;
  if (state_ != State::kRunning) {
    Fail(why);
    return;
  }
  std::string line = "tether: " + why + "\r\n";
  if (err_) (void)::write(err_.get(), line.data(), line.size());
  exit_status_ = kExitLinkLost;
  state_ = State::kDone;
  if (finished_) finished_(kExitLinkLost);
}

void ExecSession::Detach() {
  started_ = nullptr;
  finished_ = nullptr;
  for (int fd : {in_.get(), out_.get(), err_.get()}) {
    if (fd >= 0) loop_.Unwatch(fd);
  }
  state_ = State::kDone;
}

void ExecSession::Finish() {
  state_ = State::kDone;
  uint32_t value = kExitLinkLost;
  if (exit_status_ >= 0) value = static_cast<uint32_t>(exit_status_);
  if (exit_status_ < 0 && exit_signal_ > 0) value = 128 + static_cast<uint32_t>(exit_signal_);
  spdlog::debug("[{}] ended: exit value {}", log_prefix_, value);
  if (finished_) finished_(value);
}

void ExecSession::Service() {
  if (state_ == State::kDone || state_ == State::kParked) return;
  int rc;
  switch (state_) {
    case State::kOpening:
      if (request_.stdio_forward) {
        rc = ssh_channel_open_forward(channel_, request_.forward_host.c_str(),
                                      request_.forward_port, "127.0.0.1", 0);
        if (rc == SSH_AGAIN) return;
        if (rc != SSH_OK) {
          return Fail("cannot reach " + request_.forward_host + ":" +
                      std::to_string(request_.forward_port) + ": " + ssh_get_error(session_));
        }
        err_eof_ = true;  // no stderr on a forward
        state_ = State::kExec;
      } else {
        rc = ssh_channel_open_session(channel_);
        if (rc == SSH_AGAIN) return;
        if (rc != SSH_OK) {
          // Past MaxSessions sshd refuses the channel ("open failed"): not a failure of
          // this command but a sign to use another connection. libssh keeps one error
          // string per session, which another channel may have overwritten by now, so the
          // daemon decides by how many sessions are open on this connection (none: a real
          // refusal, reported with this text).
          refused_ = true;
          refusal_ = ssh_get_error(session_);
          state_ = State::kParked;
          return;
        }
        state_ = request_.pty ? State::kPty : State::kEnv;
      }
      [[fallthrough]];
    case State::kPty:
      if (state_ == State::kPty) {
        if (cols_ == 0 && !TerminalSize(&cols_, &rows_)) {
          cols_ = 80;
          rows_ = 24;
        }
        rc = ssh_channel_request_pty_size(
            channel_, request_.term.empty() ? "xterm" : request_.term.c_str(), cols_, rows_);
        if (rc == SSH_AGAIN) return;
        if (rc != SSH_OK) tty_failed_ = true;  // runs without one, as ssh does
        state_ = State::kEnv;
      }
      [[fallthrough]];
    case State::kEnv:
      while (env_index_ < request_.env.size()) {
        const std::string& var = request_.env[env_index_];
        size_t eq = var.find('=');
        if (eq == std::string::npos) {
          ++env_index_;
          continue;
        }
        rc = ssh_channel_request_env(channel_, var.substr(0, eq).c_str(),
                                     var.substr(eq + 1).c_str());
        if (rc == SSH_AGAIN) return;
        ++env_index_;  // refused (AcceptEnv) or not, go on as ssh does
      }
      state_ = State::kExec;
      [[fallthrough]];
    case State::kExec:
      if (request_.stdio_forward) {
        rc = SSH_OK;
      } else if (request_.subsystem) {
        rc = ssh_channel_request_subsystem(channel_, request_.command.c_str());
      } else if (request_.command.empty()) {
        rc = ssh_channel_request_shell(channel_);
      } else {
        rc = ssh_channel_request_exec(channel_, request_.command.c_str());
      }
      if (rc == SSH_AGAIN) return;
      if (rc != SSH_OK)
        return Fail(std::string("the server refused the command: ") + ssh_get_error(session_));
      state_ = State::kRunning;
      if (started_) {
        auto started = std::move(started_);
        started_ = nullptr;
        started(true, "", tty_failed_);
        // Telling the client can fail and end it: then this session was detached.
        if (state_ == State::kDone) return;
      }
      [[fallthrough]];
    case State::kRunning:
      break;
    case State::kParked:
    case State::kDone:
      return;
  }
  for (int round = 0; round < 4; ++round) {
    bool progress = MoveInput();
    progress |= MoveOutput(0, out_, to_out_, out_eof_, out_failed_);
    if (err_) progress |= MoveOutput(1, err_, to_err_, err_eof_, err_failed_);
    if (out_failed_ && !close_sent_) {
      // Nowhere to put what comes: close, stdin ended or not. ssh tells sshd at once
      // (eow@openssh.com, which libssh cannot send) and the command dies on its next
      // write; closing does the same for it: sshd closes its pipes and it gets
      // EPIPE/SIGPIPE, instead of running on with its output dropped while a terminal's
      // stdin keeps the session open (measured: ssh ends `yes | head -1` at a terminal
      // in 0.4 s, and this waited for Ctrl-D).
      spdlog::debug("[{}] stdout's reader is gone: closing", log_prefix_);
      close_sent_ = true;
      ssh_channel_close(channel_);
      progress = true;  // the next round sees the channel closed
    }
    if (!progress) break;
  }
  bool closed = ssh_channel_is_closed(channel_) != 0 || ssh_channel_is_eof(channel_) != 0;
  if (closed && out_eof_ && err_eof_ && to_out_.empty() && to_err_.empty() &&
      (exit_status_ >= 0 || exit_signal_ > 0 || ssh_channel_is_closed(channel_) != 0 ||
       request_.stdio_forward)) {
    if (request_.stdio_forward) exit_status_ = 0;
    Finish();
    return;
  }
  UpdateInterest();
}

bool ExecSession::MoveInput() {
  bool progress = false;
  if (!to_channel_.empty()) {
    uint32_t window = ssh_channel_window_size(channel_);
    size_t n = std::min<size_t>(window, to_channel_.size());
    if (n > 0) {
      int w = ssh_channel_write(channel_, to_channel_.data(), static_cast<uint32_t>(n));
      if (w > 0) {
        to_channel_.erase(0, static_cast<size_t>(w));
        progress = true;
      }
    }
  }
  if (to_channel_.empty() && !in_eof_) {
    char buf[65536];
    ssize_t n = ::read(in_.get(), buf, sizeof buf);
    if (n > 0) {
      to_channel_.assign(buf, static_cast<size_t>(n));
      progress = true;
    } else if (n == 0 || !WouldBlock()) {
      in_eof_ = true;
      progress = true;
    }
  }
  if (in_eof_ && to_channel_.empty() && !eof_sent_) {
    eof_sent_ = true;
    ssh_channel_send_eof(channel_);
  }
  return progress;
}

bool ExecSession::MoveOutput(int is_stderr, UniqueFd& fd, std::string& pending, bool& eof,
                             bool& failed) {
  bool progress = false;
  while (!pending.empty()) {
    ssize_t n = ::write(fd.get(), pending.data(), pending.size());
    if (n > 0) {
      pending.erase(0, static_cast<size_t>(n));
      progress = true;
      continue;
    }
    if (n < 0 && WouldBlock()) return progress;
    pending.clear();  // the reader went away: drop its output from now on
    failed = true;
    progress = true;
    break;
  }
  if (eof) return progress;
  static thread_local std::vector<char> buf(kExecWindow);
  // The count keeps the receive window at kExecWindow (DESIGN.md); the buffer bounds a read.
  int n = ssh_channel_read_timeout(channel_, buf.data(), static_cast<uint32_t>(buf.size()),
                                   is_stderr, 0);
  if (n > 0) {
    if (failed) return true;  // read anyway, so that the window stays open
    ssize_t w = ::write(fd.get(), buf.data(), static_cast<size_t>(n));
    if (w < 0 && !WouldBlock()) {
      failed = true;  // a gone reader: drop
      w = n;
    }
    if (w < 0) w = 0;
    if (w < n) pending.assign(buf.data() + w, static_cast<size_t>(n - w));
    return true;
  }
  if (n == SSH_ERROR || ssh_channel_is_eof(channel_) != 0 || ssh_channel_is_closed(channel_) != 0) {
    // A channel we closed gives nothing more (libssh answers a read with an error), though
    // what arrived before our close may still sit in its buffer: that is dropped, or this
    // stream would never end (found with `tether exec HOST yes | head -1`).
    if (close_sent_ || ssh_channel_poll(channel_, is_stderr) <= 0) {
      eof = true;
      progress = true;
    }
  }
  return progress;
}

void ExecSession::UpdateInterest() {
  unsigned in_want = (!in_eof_ && to_channel_.empty()) ? net::kReadable : net::kNone;
  unsigned out_want = to_out_.empty() ? net::kNone : net::kWritable;
  unsigned err_want = to_err_.empty() ? net::kNone : net::kWritable;
  if (in_.get() == out_.get()) {
    loop_.SetInterest(in_.get(), in_want | out_want | (in_.get() == err_.get() ? err_want : 0));
  } else {
    loop_.SetInterest(in_.get(), in_want);
    loop_.SetInterest(out_.get(), out_want | (out_.get() == err_.get() ? err_want : 0));
  }
  if (err_ && err_.get() != in_.get() && err_.get() != out_.get()) {
    loop_.SetInterest(err_.get(), err_want);
  }
}

}  // namespace tether::daemon
