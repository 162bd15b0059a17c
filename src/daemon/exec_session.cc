#include "daemon/exec_session.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

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

}  // namespace

ExecSession::ExecSession(net::EventLoop& loop, UniqueFd in, UniqueFd out, UniqueFd err,
                         ExecRequest request, Started started, Finished finished,
                         std::string log_prefix, forward::WindowBudget& budget)
    : loop_(loop),
      in_(std::move(in)),
      out_(std::move(out)),
      err_(std::move(err)),
      request_(std::move(request)),
      started_(std::move(started)),
      finished_(std::move(finished)),
      log_prefix_(std::move(log_prefix)),
      window_(budget, log_prefix_) {
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
  channel_.reset();  // sends EOF and CLOSE if still open
  // In reverse: when they share one description, the first flags we saw were the
  // original ones, and they are restored last.
  Restore(err_.get(), err_flags_);
  Restore(out_.get(), out_flags_);
  Restore(in_.get(), in_flags_);
}

void ExecSession::Rebind(ssh_session session) {
  channel_.reset();
  session_ = session;
  refused_ = false;
  channel_ = std::make_unique<ssh::SessionChannel>(session_);
  if (!channel_->created()) {
    channel_.reset();
    Fail("cannot create a channel");
    return;
  }
  state_ = State::kOpening;
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
  channel_->ChangePtySize(cols, rows);
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
  if (request_.stdio_forward) {
    value = 0;
  } else if (via_runner()) {
    if (runner_exit_) value = *runner_exit_;
  } else if (channel_->exit_status() >= 0) {
    value = static_cast<uint32_t>(channel_->exit_status());
  } else if (out_failed_) {
    // stdout's reader went away and we closed the channel: the signal that then ended the
    // command (SIGPIPE, from our close) is our doing, and ssh says 255 in that pipe. It came
    // before sshd's word on the close often enough to fail one pipe in ~100 with 141.
  } else if (!channel_->exit_signal().empty()) {
    int signal = ssh::SignalNumber(channel_->exit_signal());
    value = 128 + static_cast<uint32_t>(signal > 0 ? signal : SIGTERM);  // unknown: a signal still
  }
  spdlog::debug("[{}] ended: exit value {}", log_prefix_, value);
  if (finished_) finished_(value);
}

void ExecSession::Service() {
  if (state_ == State::kDone || state_ == State::kParked) return;
  ssh::Step step;
  switch (state_) {
    case State::kOpening:
      if (request_.stdio_forward) {
        step = channel_->OpenForward(request_.forward_host, request_.forward_port, "127.0.0.1", 0);
        if (step == ssh::Step::kAgain) return;
        if (step == ssh::Step::kFailed) {
          return Fail("cannot reach " + request_.forward_host + ":" +
                      std::to_string(request_.forward_port) + ": " + channel_->error());
        }
        err_eof_ = true;  // no stderr on a forward
        state_ = State::kExec;
      } else if (via_runner()) {
        step = channel_->OpenStreamLocal(request_.runner_socket);
        if (step == ssh::Step::kAgain) return;
        if (step == ssh::Step::kFailed) {
          return FallBack("cannot reach the runner: " + channel_->error());
        }
        runner::AppendFrame(to_channel_, runner::Frame::kRun,
                            runner::EncodeRun({request_.command, request_.env}));
        state_ = State::kRunnerWait;
        window_.Start();  // the runner's first answer is read with it
        if (!AwaitRunner()) return;
        break;
      } else {
        step = channel_->OpenSession();
        if (step == ssh::Step::kAgain) return;
        if (step == ssh::Step::kFailed) {
          // Past MaxSessions sshd refuses the channel ("open failed"): not a failure of
          // this command but a sign to use another connection. libssh keeps one error
          // string per session, which another channel may have overwritten by now, so the
          // daemon decides by how many sessions are open on this connection (none: a real
          // refusal, reported with this text).
          refused_ = true;
          refusal_ = channel_->error();
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
        step = channel_->RequestPty(request_.term.empty() ? "xterm" : request_.term, cols_, rows_);
        if (step == ssh::Step::kAgain) return;
        if (step == ssh::Step::kFailed) tty_failed_ = true;  // runs without one, as ssh does
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
        step = channel_->RequestEnv(var.substr(0, eq), var.substr(eq + 1));
        if (step == ssh::Step::kAgain) return;
        env_answers_.emplace_back(var.substr(0, eq), step == ssh::Step::kDone);
        ++env_index_;  // refused (AcceptEnv) or not, go on as ssh does
      }
      state_ = State::kExec;
      [[fallthrough]];
    case State::kExec:
      if (request_.stdio_forward) {
        step = ssh::Step::kDone;
      } else if (request_.subsystem) {
        step = channel_->RequestSubsystem(request_.command);
      } else if (request_.command.empty()) {
        step = channel_->RequestShell();
      } else {
        step = channel_->RequestExec(request_.command);
      }
      if (step == ssh::Step::kAgain) return;
      if (step == ssh::Step::kFailed)
        return Fail("the server refused the command: " + channel_->error());
      state_ = State::kRunning;
      window_.Start();
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
    case State::kRunnerWait:
      if (!AwaitRunner()) return;
      break;
    case State::kParked:
    case State::kDone:
      return;
  }
  if (state_ != State::kRunning) return;  // AwaitRunner fell back, or failed
  for (int round = 0; round < 4; ++round) {
    bool progress = MoveInput();
    if (via_runner()) {
      progress |= MoveRunnerOutput();
    } else {
      progress |= MoveOutput(false, out_, to_out_, out_eof_, out_failed_);
      if (err_) progress |= MoveOutput(true, err_, to_err_, err_eof_, err_failed_);
    }
    if (out_failed_ && !close_sent_) {
      // Nowhere to put what comes: close, stdin ended or not. ssh tells sshd at once
      // (eow@openssh.com, which libssh cannot send) and the command dies on its next
      // write; closing does the same for it: sshd closes its pipes and it gets
      // EPIPE/SIGPIPE, instead of running on with its output dropped while a terminal's
      // stdin keeps the session open (measured: ssh ends `yes | head -1` at a terminal
      // in 0.4 s, and this waited for Ctrl-D).
      spdlog::debug("[{}] stdout's reader is gone: closing", log_prefix_);
      close_sent_ = true;
      channel_->Close();
      progress = true;  // the next round sees the channel closed
    }
    if (!progress) break;
  }
  if (via_runner()) {
    if (RunnerDone()) return Finish();
    UpdateInterest();
    return;
  }
  bool closed = channel_->IsClosed() || channel_->IsEof();
  if (closed && out_eof_ && err_eof_ && to_out_.empty() && to_err_.empty() &&
      (channel_->exit_status() >= 0 || !channel_->exit_signal().empty() || channel_->IsClosed() ||
       request_.stdio_forward)) {
    Finish();
    return;
  }
  UpdateInterest();
}

bool ExecSession::MoveInput() {
  bool progress = false;
  if (!to_channel_.empty()) {
    size_t w = channel_->Write(to_channel_.data(), to_channel_.size());
    if (w > 0) {
      to_channel_.erase(0, w);
      progress = true;
    }
  }
  if (to_channel_.empty() && !in_eof_) {
    char buf[runner::kMaxDataFrame];
    ssize_t n = ::read(in_.get(), buf, sizeof buf);
    if (n > 0) {
      if (via_runner()) {
        runner::AppendFrame(to_channel_, runner::Frame::kStdin,
                            std::string_view(buf, static_cast<size_t>(n)));
      } else {
        to_channel_.assign(buf, static_cast<size_t>(n));
      }
      progress = true;
    } else if (n == 0 || !WouldBlock()) {
      in_eof_ = true;
      progress = true;
    }
  }
  if (in_eof_ && to_channel_.empty() && !eof_sent_) {
    eof_sent_ = true;
    if (via_runner()) {
      // The channel stays open both ways: its close would mean the client went away.
      runner::AppendFrame(to_channel_, runner::Frame::kStdinEof, "");
      to_channel_.erase(0, channel_->Write(to_channel_.data(), to_channel_.size()));
    } else {
      (void)channel_->SendEof();  // a broken channel shows itself as closed
    }
  }
  return progress;
}

namespace {

// Writes what waits for `fd`; a reader gone drops it (and what comes) with `failed`.
// Whether anything moved.
bool WritePending(const UniqueFd& fd, std::string& pending, bool& failed) {
  bool progress = false;
  while (!pending.empty()) {
    ssize_t n = fd ? ::write(fd.get(), pending.data(), pending.size()) : -1;
    if (n > 0) {
      pending.erase(0, static_cast<size_t>(n));
      progress = true;
      continue;
    }
    if (n < 0 && fd && WouldBlock()) return progress;
    pending.clear();  // the reader went away: drop its output from now on
    failed = true;
    progress = true;
    break;
  }
  return progress;
}

}  // namespace

bool ExecSession::MoveOutput(bool is_stderr, UniqueFd& fd, std::string& pending, bool& eof,
                             bool& failed) {
  bool progress = WritePending(fd, pending, failed);
  if (!pending.empty()) return progress;
  if (eof) return progress;
  // Room for the largest window: a read that re-grants the window asks for all of it.
  // Not initialized, so only the pages a read fills are ever touched.
  static thread_local std::unique_ptr<char[]> buf(new char[forward::kMaxWindow]);
  Result<size_t> read = channel_->Read(buf.get(), forward::kMaxWindow, is_stderr, window_.size());
  size_t n = read.ok() ? *read : 0;
  if (n > 0) {
    if (failed) return true;  // read anyway, so that the window stays open
    ssize_t w = ::write(fd.get(), buf.get(), n);
    if (w < 0 && !WouldBlock()) {
      failed = true;  // a gone reader: drop
      w = static_cast<ssize_t>(n);
    }
    if (w < 0) w = 0;
    if (static_cast<size_t>(w) < n) pending.assign(buf.get() + w, n - static_cast<size_t>(w));
    if (!is_stderr) {
      out_drained_ += n;
      window_.AfterRead(out_drained_, pending.empty(), [this] {
        return forward::EvidenceNow(channel_->TakeLongestStall(), ssh_get_fd(session_));
      });
    }
    return true;
  }
  if (!read.ok() || channel_->IsEof() || channel_->IsClosed()) {
    // A channel we closed gives nothing more (libssh answers a read with an error), though
    // what arrived before our close may still sit in its buffer: that is dropped, or this
    // stream would never end (found with `tether exec HOST yes | head -1`).
    if (close_sent_ || !channel_->HasPending(is_stderr)) {
      eof = true;
      progress = true;
    }
  }
  return progress;
}

void ExecSession::FallBack(const std::string& why) {
  spdlog::debug("[{}] not by the runner ({}): as a session", log_prefix_, why);
  runner_trouble_ = why;
  channel_.reset();  // its close goes out
  request_.runner_socket.clear();
  to_channel_.clear();
  runner_frames_ = runner::FrameReader();
  refused_ = false;
  state_ = State::kParked;  // the pool places it as any session
}

bool ExecSession::AwaitRunner() {
  // The request first: a long command line may need more than the server's window.
  to_channel_.erase(0, channel_->Write(to_channel_.data(), to_channel_.size()));
  runner::Frame type;
  std::string payload;
  auto next = runner_frames_.Next(&type, &payload);
  if (next == runner::FrameReader::Result::kNeedMore) {
    char buf[4096];
    Result<size_t> read = channel_->Read(buf, sizeof buf, false, window_.size());
    if (read.ok() && *read > 0) {
      runner_frames_.Feed(buf, *read);
      next = runner_frames_.Next(&type, &payload);
    } else if (!read.ok() || channel_->IsEof() || channel_->IsClosed()) {
      FallBack("the runner closed the channel");
      return false;
    }
  }
  if (next == runner::FrameReader::Result::kNeedMore) return false;  // the link wakes us
  if (next == runner::FrameReader::Result::kBroken || type != runner::Frame::kStarted) {
    FallBack(type == runner::Frame::kRefused && next == runner::FrameReader::Result::kFrame
                 ? "the runner refused: " + payload
                 : std::string("the runner answered out of turn"));
    return false;
  }
  spdlog::debug("[{}] by the runner: pid {}", log_prefix_, payload);
  runner_started_ = true;
  state_ = State::kRunning;
  if (started_) {
    auto started = std::move(started_);
    started_ = nullptr;
    started(true, "", false);
    if (state_ == State::kDone) return false;  // telling the client ended it
  }
  return true;
}

bool ExecSession::MoveRunnerOutput() {
  bool progress = WritePending(out_, to_out_, out_failed_);
  progress |= WritePending(err_, to_err_, err_failed_);
  if (!to_out_.empty() || !to_err_.empty() || runner_exit_ || runner_broken_) return progress;
  auto decode = [this] {
    runner::Frame type;
    std::string payload;
    for (;;) {
      auto next = runner_frames_.Next(&type, &payload);
      if (next == runner::FrameReader::Result::kNeedMore) return;
      if (next == runner::FrameReader::Result::kBroken) {
        runner_broken_ = true;
        return;
      }
      if (type == runner::Frame::kStdout) {
        if (!out_failed_) to_out_ += payload;
      } else if (type == runner::Frame::kStderr) {
        if (!err_failed_) to_err_ += payload;
      } else if (type == runner::Frame::kExit && runner::DecodeExit(payload)) {
        runner_exit_ = runner::DecodeExit(payload);
        return;
      } else {
        runner_broken_ = true;
        return;
      }
    }
  };
  decode();  // what came with the runner's first answer
  if (to_out_.empty() && to_err_.empty() && !runner_exit_ && !runner_broken_) {
    static thread_local std::unique_ptr<char[]> buf(new char[forward::kMaxWindow]);
    Result<size_t> read = channel_->Read(buf.get(), forward::kMaxWindow, false, window_.size());
    size_t n = read.ok() ? *read : 0;
    if (n > 0) {
      runner_frames_.Feed(buf.get(), n);
      decode();
      progress = true;
    } else if (!read.ok() || channel_->IsEof() || channel_->IsClosed()) {
      if (close_sent_ || !channel_->HasPending(false)) runner_broken_ = true;
      progress = true;
    }
    WritePending(out_, to_out_, out_failed_);
    WritePending(err_, to_err_, err_failed_);
    if (n > 0) {
      out_drained_ += n;
      window_.AfterRead(out_drained_, to_out_.empty() && to_err_.empty(), [this] {
        return forward::EvidenceNow(channel_->TakeLongestStall(), ssh_get_fd(session_));
      });
    }
  }
  return progress;
}

bool ExecSession::RunnerDone() {
  if (runner_exit_) return to_out_.empty() && to_err_.empty();
  if (close_sent_) return true;  // stdout's reader went away and we closed: 255
  if (!runner_broken_) return false;
  runner_trouble_ = "the runner went away mid-command";
  std::string line = "tether: the runner on the server went away mid-command; its end is unknown\n";
  if (err_) (void)::write(err_.get(), line.data(), line.size());
  return true;
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
