#include "ssh/channel.h"

#include <algorithm>

namespace tether::ssh {

Channel::Channel(ssh_session session, std::string host, uint16_t port, std::string path,
                 std::string origin_host, uint16_t origin_port, ChannelObserver* observer)
    : session_(session),
      channel_(ssh_channel_new(session)),
      host_(std::move(host)),
      port_(port),
      path_(std::move(path)),
      origin_host_(std::move(origin_host)),
      origin_port_(origin_port),
      observer_(observer) {
  if (channel_ == nullptr) {
    state_ = OpenState::kFailed;
    error_ = "cannot create a channel: " + std::string(ssh_get_error(session_));
    return;
  }
  InstallCallbacks();
}

Channel::Channel(ssh_session session, ssh_channel accepted, ChannelObserver* observer)
    : session_(session), channel_(accepted), observer_(observer) {
  if (channel_ == nullptr) {
    state_ = OpenState::kFailed;
    error_ = "no channel";
    return;
  }
  state_ = OpenState::kOpen;
  InstallCallbacks();
}

void Channel::InstallCallbacks() {
  ssh_callbacks_init(&callbacks_);
  callbacks_.userdata = this;
  callbacks_.channel_data_function = &Channel::OnData;
  callbacks_.channel_eof_function = &Channel::OnEof;
  callbacks_.channel_close_function = &Channel::OnClose;
  callbacks_.channel_write_wontblock_function = &Channel::OnWindow;
  ssh_set_channel_callbacks(channel_, &callbacks_);
}

Channel::~Channel() {
  if (channel_ == nullptr) return;
  ssh_remove_channel_callbacks(channel_, &callbacks_);
  // Sends EOF and CLOSE if still open; libssh keeps the channel until the peer's
  // CLOSE arrives, then frees it.
  ssh_channel_free(channel_);
}

int Channel::OnData(ssh_session, ssh_channel, void*, uint32_t len, int is_stderr, void* userdata) {
  auto* self = static_cast<Channel*>(userdata);
  if (is_stderr == 0) {
    self->buffered_ = len;  // len is all that is buffered
    self->stall_.Data(StallMeter::Clock::now());
  }
  self->observer_->OnChannelActivity();
  return 0;  // take nothing: Read() collects it with the window-growing call
}

void Channel::OnEof(ssh_session, ssh_channel, void* userdata) {
  static_cast<Channel*>(userdata)->observer_->OnChannelActivity();
}

void Channel::OnClose(ssh_session, ssh_channel, void* userdata) {
  static_cast<Channel*>(userdata)->observer_->OnChannelActivity();
}

int Channel::OnWindow(ssh_session, ssh_channel, uint32_t, void* userdata) {
  static_cast<Channel*>(userdata)->observer_->OnChannelActivity();
  return 0;
}

Channel::OpenState Channel::PollOpen() {
  if (state_ != OpenState::kPending) return state_;
  int rc;
  if (path_.empty()) {
    rc = ssh_channel_open_forward(channel_, host_.c_str(), port_, origin_host_.c_str(),
                                  origin_port_);
  } else {
    rc = ssh_channel_open_forward_unix(channel_, path_.c_str(), origin_host_.c_str(), origin_port_);
  }
  if (rc == SSH_AGAIN) return state_;
  if (rc != SSH_OK) {
    state_ = OpenState::kFailed;
    error_ = ssh_get_error(session_);
    return state_;
  }
  state_ = OpenState::kOpen;
  return state_;
}

Channel::ReadResult Channel::Read(char* buf, size_t cap, uint32_t window) {
  ReadResult r;
  if (state_ != OpenState::kOpen) {
    r.closed = true;
    return r;
  }
  const uint32_t count = grant_.Count(window, buffered_, cap);
  int n = ssh_channel_read_timeout(channel_, buf, count, 0, 0);
  if (n == SSH_ERROR) {
    // "Remote channel is closed": ends this channel, not the session.
    r.closed = true;
    buffered_ = 0;
    return r;
  }
  if (n > 0) {
    r.bytes = static_cast<size_t>(n);
    buffered_ = buffered_ > r.bytes ? buffered_ - r.bytes : 0;
    grant_.Consumed(r.bytes);
    return r;
  }
  // 0 means "nothing yet" or end of stream: ask.
  buffered_ = 0;
  if (ssh_channel_is_eof(channel_) != 0) r.eof = true;
  if (ssh_channel_is_closed(channel_) != 0 && !r.eof) r.closed = true;
  if (!r.eof && !r.closed) stall_.Empty(StallMeter::Clock::now());
  return r;
}

int Channel::LinkFd() const {
  ssh_session session = channel_ != nullptr ? ssh_channel_get_session(channel_) : nullptr;
  return session != nullptr ? ssh_get_fd(session) : -1;
}

std::chrono::steady_clock::duration Channel::TakeLongestStall() { return stall_.Take(); }

Result<size_t> Channel::Write(const char* data, size_t len) {
  if (state_ != OpenState::kOpen || ssh_channel_is_closed(channel_) != 0) {
    return MakeError("channel", "channel is closed");
  }
  uint32_t window = ssh_channel_window_size(channel_);
  size_t n = std::min<size_t>(len, window);
  if (n == 0) return size_t{0};
  int rc = ssh_channel_write(channel_, data, static_cast<uint32_t>(n));
  if (rc < 0) return MakeError("channel", ssh_get_error(session_));
  return static_cast<size_t>(rc);
}

uint32_t Channel::RemoteWindow() const {
  if (state_ != OpenState::kOpen) return 0;
  return ssh_channel_window_size(channel_);
}

Status Channel::SendEof() {
  if (state_ != OpenState::kOpen) return Status::Ok();
  // SSH_AGAIN only says the flush that follows the EOF packet is not finished: in
  // non-blocking mode the packet is queued and goes out with the session's output.
  int rc = ssh_channel_send_eof(channel_);
  if (rc != SSH_OK && rc != SSH_AGAIN) {
    return MakeError("channel", ssh_get_error(session_));
  }
  return Status::Ok();
}

bool Channel::IsOpen() const {
  return state_ == OpenState::kOpen && ssh_channel_is_closed(channel_) == 0;
}

}  // namespace tether::ssh
