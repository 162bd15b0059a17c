#include "ssh/session_channel.h"

#include <signal.h>

#include <algorithm>
#include <utility>

namespace tether::ssh {
namespace {

Step StepOf(int rc) {
  if (rc == SSH_OK) return Step::kDone;
  return rc == SSH_AGAIN ? Step::kAgain : Step::kFailed;
}

}  // namespace

int SignalNumber(std::string_view name) {
  static const std::pair<std::string_view, int> kSignals[] = {
      {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"FPE", SIGFPE},   {"HUP", SIGHUP},   {"ILL", SIGILL},
      {"INT", SIGINT},   {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},
      {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}};
  for (const auto& [n, v] : kSignals) {
    if (name == n) return v;
  }
  return 0;
}

SessionChannel::SessionChannel(ssh_session session)
    : session_(session), channel_(ssh_channel_new(session)) {
  if (channel_ == nullptr) return;
  ssh_callbacks_init(&callbacks_);
  callbacks_.userdata = this;
  callbacks_.channel_exit_status_function = &SessionChannel::OnExitStatus;
  callbacks_.channel_exit_signal_function = &SessionChannel::OnExitSignal;
  ssh_set_channel_callbacks(channel_, &callbacks_);
}

SessionChannel::~SessionChannel() {
  if (channel_ == nullptr) return;
  ssh_remove_channel_callbacks(channel_, &callbacks_);
  ssh_channel_free(channel_);
}

void SessionChannel::OnExitStatus(ssh_session, ssh_channel, int status, void* self) {
  static_cast<SessionChannel*>(self)->exit_status_ = status;
}

void SessionChannel::OnExitSignal(ssh_session, ssh_channel, const char* signal, int, const char*,
                                  const char*, void* self) {
  static_cast<SessionChannel*>(self)->exit_signal_ = signal != nullptr ? signal : "";
}

Step SessionChannel::OpenSession() { return StepOf(ssh_channel_open_session(channel_)); }

Step SessionChannel::OpenForward(const std::string& host, uint16_t port,
                                 const std::string& origin_host, uint16_t origin_port) {
  return StepOf(
      ssh_channel_open_forward(channel_, host.c_str(), port, origin_host.c_str(), origin_port));
}

Step SessionChannel::OpenStreamLocal(const std::string& path) {
  return StepOf(ssh_channel_open_forward_unix(channel_, path.c_str(), "127.0.0.1", 0));
}

Step SessionChannel::RequestPty(const std::string& term, int cols, int rows) {
  return StepOf(ssh_channel_request_pty_size(channel_, term.c_str(), cols, rows));
}

Step SessionChannel::RequestEnv(const std::string& name, const std::string& value) {
  return StepOf(ssh_channel_request_env(channel_, name.c_str(), value.c_str()));
}

Step SessionChannel::RequestExec(const std::string& command) {
  return StepOf(ssh_channel_request_exec(channel_, command.c_str()));
}

Step SessionChannel::RequestShell() { return StepOf(ssh_channel_request_shell(channel_)); }

Step SessionChannel::RequestSubsystem(const std::string& name) {
  return StepOf(ssh_channel_request_subsystem(channel_, name.c_str()));
}

void SessionChannel::ChangePtySize(int cols, int rows) {
  ssh_channel_change_pty_size(channel_, cols, rows);
}

size_t SessionChannel::Write(const char* data, size_t len) {
  size_t n = std::min<size_t>(ssh_channel_window_size(channel_), len);
  if (n == 0) return 0;
  int w = ssh_channel_write(channel_, data, static_cast<uint32_t>(n));
  return w > 0 ? static_cast<size_t>(w) : 0;
}

Status SessionChannel::WriteAll(const std::string& data) {
  if (!data.empty() &&
      ssh_channel_write(channel_, data.data(), static_cast<uint32_t>(data.size())) == SSH_ERROR) {
    return MakeError("channel", error());
  }
  return Status::Ok();
}

Result<size_t> SessionChannel::Read(char* buf, size_t cap, bool is_stderr, uint32_t window) {
  // What libssh holds for this stream (it reads the socket first when it holds nothing).
  const int polled = ssh_channel_poll(channel_, is_stderr ? 1 : 0);
  if (polled == SSH_ERROR) return MakeError("channel", error());
  const size_t buffered = polled > 0 ? static_cast<size_t>(polled) : 0;
  const uint32_t count = is_stderr
                             ? static_cast<uint32_t>(std::min(std::max<size_t>(buffered, 1), cap))
                             : grant_.Count(window, buffered, cap);
  int n = ssh_channel_read_timeout(channel_, buf, count, is_stderr ? 1 : 0, 0);
  if (n == SSH_ERROR) return MakeError("channel", error());
  const size_t got = n > 0 ? static_cast<size_t>(n) : 0;
  grant_.Consumed(got);  // both streams use the one window
  if (!is_stderr) {
    const auto now = StallMeter::Clock::now();
    if (got > 0) {
      stall_.Data(now);
    } else if (polled != SSH_EOF) {
      stall_.Empty(now);
    }
  }
  return got;
}

bool SessionChannel::HasPending(bool is_stderr) {
  return ssh_channel_poll(channel_, is_stderr ? 1 : 0) > 0;
}

void SessionChannel::TakeIn() {
  // libssh reads packets after EOF only in calls that wait for the channel's end; this
  // one, on a non-blocking session, reads what is there and returns.
  const bool blocking = ssh_is_blocking(session_) != 0;
  ssh_set_blocking(session_, 0);
  (void)ssh_channel_get_exit_status(channel_);
  ssh_set_blocking(session_, blocking ? 1 : 0);
}

Status SessionChannel::SendEof() {
  if (ssh_channel_send_eof(channel_) != SSH_OK) return MakeError("channel", error());
  return Status::Ok();
}

void SessionChannel::Close() { ssh_channel_close(channel_); }

bool SessionChannel::IsEof() const { return ssh_channel_is_eof(channel_) != 0; }

bool SessionChannel::IsClosed() const { return ssh_channel_is_closed(channel_) != 0; }

std::string SessionChannel::error() const { return ssh_get_error(session_); }

}  // namespace tether::ssh
