#include "control/mux_probe.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "control/mux_codec.h"
#include "control/mux_wire.h"
#include "net/socket.h"

namespace tether::control {
namespace {

using Clock = std::chrono::steady_clock;

bool SendAll(int fd, const std::string& packet) {
  size_t off = 0;
  while (off < packet.size()) {
    const ssize_t n = ::send(fd, packet.data() + off, packet.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// The next server message, or a reason in `why`.
bool ReceiveOne(int fd, std::string& in, Clock::time_point deadline, mux::ServerMessage* out,
                std::string* why) {
  for (;;) {
    mux::Frame f = mux::ParseFrame(in);
    if (f.state == mux::Frame::State::kTooLarge) {
      *why = "it sent an oversized packet";
      return false;
    }
    if (f.state == mux::Frame::State::kDone) {
      auto m = mux::DecodeServerMessage(f.payload);
      in.erase(0, f.consumed);
      if (!m.ok()) {
        *why = "it sent something that is not a mux message";
        return false;
      }
      *out = *m;
      return true;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      *why = "it accepts but did not answer a mux hello";
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;  // the deadline check above ends it
    char buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      *why = "it closed the connection before answering a mux hello";
      return false;
    }
    in.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

MuxProbe ProbeMuxSocket(const std::string& path, std::chrono::milliseconds timeout) {
  MuxProbe probe;
  const auto deadline = Clock::now() + timeout;
  auto fd = net::ConnectUnix(path);
  if (!fd.ok()) {
    const int err = fd.error().sys_errno;
    if (err == ENOENT) return probe;
    if (err == ECONNREFUSED) {
      probe.kind = MuxProbe::Kind::kStale;
      return probe;
    }
    probe.kind = MuxProbe::Kind::kOther;
    probe.detail = fd.error().message;
    return probe;
  }
  probe.kind = MuxProbe::Kind::kOther;
  std::string in;
  mux::ServerMessage m;
  if (!SendAll(fd->get(), mux::FramePacket(mux::EncodeClientHello())) ||
      !SendAll(fd->get(), mux::FramePacket(mux::EncodeAliveCheck(1)))) {
    probe.detail = "it accepts but the hello could not be sent";
    return probe;
  }
  if (!ReceiveOne(fd->get(), in, deadline, &m, &probe.detail)) return probe;
  if (m.type != mux::kMsgHello) {
    probe.detail = "it does not greet as a mux master";
    return probe;
  }
  if (!ReceiveOne(fd->get(), in, deadline, &m, &probe.detail)) return probe;
  if (m.type != mux::kAlive) {
    probe.detail = "it did not answer an alive check";
    return probe;
  }
  probe.kind = MuxProbe::Kind::kMaster;
  probe.pid = m.value;
  return probe;
}

}  // namespace tether::control
