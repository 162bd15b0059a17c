#include "forward/pump.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace tether::forward {

Pump::Pump(PumpContext& context, UniqueFd socket, std::unique_ptr<ssh::ChannelIo> channel,
           std::shared_ptr<ForwardStats> stats, std::string log_prefix, PumpHooks hooks)
    : context_(context),
      socket_(std::move(socket)),
      channel_(std::move(channel)),
      stats_(std::move(stats)),
      log_prefix_(std::move(log_prefix)),
      hooks_(std::move(hooks)),
      window_(*context_.budget, log_prefix_) {
  to_channel_ = std::move(hooks_.to_channel);
  ++stats_->live;
  ++stats_->total;
}

Pump::~Pump() {
  --stats_->live;
  if (socket_) context_.loop->Unwatch(socket_.get());
}

void Pump::Finish(const std::string& why) {
  if (done_) return;
  done_ = true;
  spdlog::debug("[{}] closed: {} (in {} B, out {} B)", log_prefix_, why, bytes_in_, bytes_out_);
}

void Pump::OnOpened() {
  open_ = true;
  window_.Start();
}

long Pump::WriteSocket(const char* data, size_t len) {
  ssize_t n = ::send(socket_.get(), data, len, MSG_NOSIGNAL);
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  return -1;
}

bool Pump::ChannelToSocket() {
  bool progress = false;
  if (to_socket_off_ < to_socket_.size()) {
    long n = WriteSocket(to_socket_.data() + to_socket_off_, to_socket_.size() - to_socket_off_);
    if (n < 0) {
      Finish("local socket: " + std::string(std::strerror(errno)));
      return false;
    }
    to_socket_off_ += static_cast<size_t>(n);
    if (to_socket_off_ == to_socket_.size()) {
      to_socket_.clear();
      to_socket_off_ = 0;
    }
    progress = n > 0;
  }
  if (to_socket_.empty() && !channel_eof_) {
    ssh::ChannelIo::ReadResult r =
        channel_->Read(context_.scratch, context_.scratch_size, window_.size());
    if (r.bytes > 0) {
      bytes_in_ += r.bytes;
      stats_->bytes_in += r.bytes;
      long n = WriteSocket(context_.scratch, r.bytes);
      if (n < 0) {
        Finish("local socket: " + std::string(std::strerror(errno)));
        return false;
      }
      if (static_cast<size_t>(n) < r.bytes) {
        to_socket_.assign(context_.scratch + n, r.bytes - static_cast<size_t>(n));
      }
      window_.AfterRead(bytes_in_, to_socket_.empty(), [this] {
        return EvidenceNow(channel_->TakeLongestStall(), channel_->LinkFd());
      });
      progress = true;
    } else if (r.eof) {
      channel_eof_ = true;
      progress = true;
    } else if (r.closed) {
      // Closed without EOF (or after it): nothing more will come from the server.
      channel_eof_ = true;
      progress = true;
    }
  }
  if (channel_eof_ && to_socket_.empty() && !socket_shut_) {
    ::shutdown(socket_.get(), SHUT_WR);
    socket_shut_ = true;
  }
  return progress;
}

bool Pump::SocketToChannel() {
  bool progress = false;
  if (to_channel_off_ < to_channel_.size()) {
    auto n =
        channel_->Write(to_channel_.data() + to_channel_off_, to_channel_.size() - to_channel_off_);
    if (!n.ok()) {
      Finish("channel: " + n.error().message);
      return false;
    }
    to_channel_off_ += *n;
    bytes_out_ += *n;
    stats_->bytes_out += *n;
    if (to_channel_off_ == to_channel_.size()) {
      to_channel_.clear();
      to_channel_off_ = 0;
    }
    progress = *n > 0;
  }
  if (to_channel_.empty() && !socket_eof_) {
    uint32_t window = channel_->RemoteWindow();
    if (window > 0) {
      size_t want = std::min<size_t>({window, kSocketReadChunk, context_.scratch_size});
      ssize_t got = ::recv(socket_.get(), context_.scratch, want, 0);
      if (got > 0) {
        auto n = channel_->Write(context_.scratch, static_cast<size_t>(got));
        if (!n.ok()) {
          Finish("channel: " + n.error().message);
          return false;
        }
        bytes_out_ += *n;
        stats_->bytes_out += *n;
        if (*n < static_cast<size_t>(got)) {
          to_channel_.assign(context_.scratch + *n, static_cast<size_t>(got) - *n);
        }
        progress = true;
      } else if (got == 0) {
        socket_eof_ = true;
        progress = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        Finish("local socket: " + std::string(std::strerror(errno)));
        return false;
      }
    }
  }
  if (socket_eof_ && to_channel_.empty() && !eof_sent_) {
    Status s = channel_->SendEof();
    eof_sent_ = true;
    if (!s.ok()) {
      Finish("channel EOF: " + s.error().message);
      return false;
    }
  }
  return progress;
}

void Pump::UpdateInterest() {
  unsigned want = net::kNone;
  bool window_open = channel_->RemoteWindow() > 0;
  blocked_on_window_ = !window_open && (!socket_eof_ || !to_channel_.empty());
  if (!socket_eof_ && to_channel_.empty() && window_open) want |= net::kReadable;
  if (!to_socket_.empty()) want |= net::kWritable;
  if (want != interest_) {
    context_.loop->SetInterest(socket_.get(), want);
    interest_ = want;
  }
}

void Pump::Service() {
  if (done_) return;
  if (!open_) {
    switch (channel_->PollOpen()) {
      case ssh::ChannelIo::OpenState::kPending:
        if (interest_ != net::kNone) {
          context_.loop->SetInterest(socket_.get(), net::kNone);
          interest_ = net::kNone;
        }
        return;
      case ssh::ChannelIo::OpenState::kFailed:
        ++stats_->failed;
        spdlog::warn("[{}] server could not open the channel: {}", log_prefix_, channel_->error());
        if (hooks_.on_open) {
          // The client's answer (a SOCKS failure code, an HTTP 502): best effort, the
          // connection closes right after.
          std::string reply = hooks_.on_open(false, channel_->error());
          (void)WriteSocket(reply.data(), reply.size());
        }
        Finish("open failed");
        return;
      case ssh::ChannelIo::OpenState::kOpen:
        OnOpened();
        if (hooks_.on_open) to_socket_ = hooks_.on_open(true, "");
        break;
    }
  }
  // Bounded: a few rounds per call keep one busy stream from starving the others.
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds && !done_; ++round) {
    bool a = ChannelToSocket();
    if (done_) break;
    bool b = SocketToChannel();
    if (!a && !b) break;
  }
  if (done_) return;
  bool both_eof = socket_eof_ && eof_sent_ && channel_eof_ && socket_shut_;
  if (both_eof) {
    Finish("both sides closed");
    return;
  }
  if (!channel_->IsOpen() && to_socket_.empty() && channel_eof_) {
    Finish("server closed the channel");
    return;
  }
  UpdateInterest();
}

}  // namespace tether::forward
