#include "cli/mux_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/mux_wire.h"
#include "net/socket.h"

namespace tether::cli {
namespace {

namespace mux = control::mux;

// A daemon answers hello, alive checks and session opens within this, or is stuck.
constexpr int kReplyTimeoutMs = 15000;

}  // namespace

Result<MuxClient> MuxClient::Connect(const std::string& path) {
  MuxClient c;
  auto fd = net::ConnectUnix(path);
  if (!fd.ok()) return fd.take_error();
  c.fd_ = std::move(*fd);
  (void)net::SetNonBlocking(c.fd_.get(), false);
  Status s = c.Send(mux::EncodeClientHello());
  if (!s.ok()) return s.take_error();
  auto hello = c.Receive(kReplyTimeoutMs);
  if (!hello.ok()) return hello.take_error();
  if (hello->type != mux::kMsgHello || hello->value != mux::kMuxVersion) {
    return MakeError("mux", "the daemon speaks another mux protocol version");
  }
  s = c.Send(mux::EncodeAliveCheck(1));
  if (!s.ok()) return s.take_error();
  auto alive = c.Receive(kReplyTimeoutMs);
  if (!alive.ok()) return alive.take_error();
  if (alive->type != mux::kAlive) return MakeError("mux", "unexpected answer to an alive check");
  c.pid_ = static_cast<pid_t>(alive->value);
  return c;
}

Status MuxClient::Send(const std::string& payload) {
  std::string packet = mux::FramePacket(payload);
  size_t off = 0;
  while (off < packet.size()) {
    ssize_t n = ::send(fd_.get(), packet.data() + off, packet.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError("mux", "send", errno);
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status MuxClient::SendFd(int fd) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  for (;;) {
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n == 1) return Status::Ok();
    if (n < 0 && errno == EINTR) continue;
    return ErrnoError("mux", "passing a descriptor", errno);
  }
}

Result<mux::ServerMessage> MuxClient::Receive(int timeout_ms) {
  for (;;) {
    mux::Frame f = mux::ParseFrame(in_);
    if (f.state == mux::Frame::State::kTooLarge) return MakeError("mux", "oversized reply");
    if (f.state == mux::Frame::State::kDone) {
      auto m = mux::DecodeServerMessage(f.payload);
      in_.erase(0, f.consumed);
      return m;
    }
    if (timeout_ms >= 0) {
      pollfd p{fd_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, timeout_ms);
      if (r == 0) return MakeError("mux", "the daemon did not answer");
      if (r < 0 && errno != EINTR) return ErrnoError("mux", "poll", errno);
    }
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return MakeError("mux", "the daemon closed the connection");
    in_.append(buf, static_cast<size_t>(n));
  }
}

Status MuxClient::OpenSession(const mux::NewSession& request, int in, int out, int err) {
  Status s = Send(mux::EncodeNewSession(request));
  if (s.ok()) s = SendFd(in);
  if (s.ok()) s = SendFd(out);
  if (s.ok()) s = SendFd(err);
  if (!s.ok()) return s;
  for (int i = 0; i < 4; ++i) {
    auto m = Receive(-1);  // opening waits for the server; the daemon bounds it
    if (!m.ok()) return m.take_error();
    switch (m->type) {
      case mux::kSessionOpened:
        session_ = m->value;
        return Status::Ok();
      case mux::kTtyAllocFail:
        tty_failed_ = true;
        break;
      case mux::kFailure:
      case mux::kPermissionDenied:
        return MakeError("exec", m->reason);
      default:
        break;
    }
  }
  return MakeError("mux", "unexpected answers to a session request");
}

uint32_t MuxClient::WaitForExit(bool* tty_failed) {
  // Bounded by the session: it ends when the command does, or the daemon goes.
  for (;;) {
    auto m = Receive(-1);
    if (!m.ok()) return 255;
    if (m->type == mux::kTtyAllocFail) tty_failed_ = true;
    if (tty_failed != nullptr) *tty_failed = tty_failed_;
    if (m->type == mux::kExitMessage) return m->value;
  }
}

}  // namespace tether::cli
