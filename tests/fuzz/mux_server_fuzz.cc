// Fuzz target for the mux server's session handling (src/control/mux_server.cc): the
// real MuxServer, in-process, on a unix socket in a temporary directory, against a fake
// daemon (tests/unit/control/fake_mux_host.h: sessions start and finish on the next loop
// iterations, forwards answer at once). Built by tests/CMakeLists.txt: with libFuzzer by
// scripts/fuzz.sh, or over tests/fuzz/corpus/mux_server/ as the ctest fuzz.mux_server.
//
// The input is one client's connection:
//   byte 0   bits 0-1: how many descriptors the client passes (0-3, each with one byte of
//            data, as ssh's mm_send_fd does); bit 2: send the client hello first;
//            bit 3: half-close (SHUT_WR) after the bytes instead of staying open
//   byte 1   where in the stream the descriptors go (byte 1 / 255 of the way: 255 is
//            after the last byte)
//   rest     the bytes the client writes (requests, with or without their descriptors)
// Besides memory safety (run it under ASan) it checks that every packet the server sends
// decodes as a server message, and that once the client is gone the server holds no
// client and the daemon no session (each one finished or was ended).
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "common/log.h"
#include "control/fake_mux_host.h"
#include "control/mux_codec.h"
#include "control/mux_server.h"
#include "net/event_loop.h"
#include "net/socket.h"

namespace {

using namespace tether;
using namespace std::chrono_literals;

// Longest input worth the time: a few packets of each kind fit many times over.
constexpr size_t kMaxInputBytes = 64 * 1024;
// Loop iterations per phase: enough for accept, a request, a session's start and finish.
constexpr int kRounds = 16;

void Require(bool ok) {
  if (!ok) std::abort();
}

struct Fixture;
Fixture& TheFixture();

struct Fixture {
  Fixture() {
    spdlog::set_level(spdlog::level::off);
    char dir[] = "/tmp/tether-mux-fuzz-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    dir_path = dir;
    path = dir_path + "/gpu.mux";
    Listen();
    std::atexit([] { std::filesystem::remove_all(TheFixture().dir_path); });
  }
  // (Again) after ssh -O stop closed the listener.
  void Listen() {
    server.reset();
    auto listener = net::ListenUnix(path);
    if (!listener.ok()) {
      std::fprintf(stderr, "mux_server_fuzz: %s\n", listener.error().ToString().c_str());
      std::abort();
    }
    server = std::make_unique<control::MuxServer>(loop, std::move(*listener), path, host);
  }
  void Run(int rounds) {
    for (int i = 0; i < rounds; ++i) {
      if (!loop.RunOnce(0ms).ok()) std::abort();
    }
  }

  net::EventLoop loop;
  control::FakeMuxHost host{loop};
  std::string dir_path;  // removed at exit
  std::string path;
  std::unique_ptr<control::MuxServer> server;
};

Fixture& TheFixture() {
  static auto* fixture = new Fixture();  // never destroyed: the run ends by exit()
  return *fixture;
}

// Reads what the server sent and checks each whole packet.
void Drain(int fd, std::string& in) {
  char buf[16384];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
    in.append(buf, static_cast<size_t>(n));
  for (;;) {
    control::mux::Frame frame = control::mux::ParseFrame(in);
    if (frame.state != control::mux::Frame::State::kDone) {
      Require(frame.state == control::mux::Frame::State::kNeedMore);
      return;
    }
    Require(control::mux::DecodeServerMessage(frame.payload).ok());
    in.erase(0, frame.consumed);
  }
}

// Writes `bytes`, letting the server read between tries (the socket buffer is finite).
void Write(Fixture& f, int fd, std::string_view bytes, std::string& in) {
  for (int tries = 0; !bytes.empty() && tries < 1000; ++tries) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return;  // the server closed it
    f.Run(1);
    Drain(fd, in);
  }
}

// One descriptor (of /dev/null) with one byte, as mm_send_fd.
void SendFd(int fd) {
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) std::abort();
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
  std::memcpy(CMSG_DATA(cm), &devnull, sizeof devnull);
  (void)::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  ::close(devnull);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > kMaxInputBytes) return 0;
  Fixture& f = TheFixture();
  const unsigned flags = data[0];
  const size_t fd_count = flags & 3u;
  const bool hello = (flags & 4u) != 0;
  const bool half_close = (flags & 8u) != 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t fds_at = stream.size() * data[1] / 255;

  auto conn = net::ConnectUnix(f.path);
  if (!conn.ok()) {  // an earlier input stopped the listener (ssh -O stop)
    f.Listen();
    conn = net::ConnectUnix(f.path);
    Require(conn.ok());
  }
  const int fd = conn->get();
  std::string in;
  f.Run(2);  // accept, hello
  if (hello) Write(f, fd, control::mux::FramePacket(control::mux::EncodeClientHello()), in);
  Write(f, fd, stream.substr(0, fds_at), in);
  for (size_t i = 0; i < fd_count; ++i) SendFd(fd);
  Write(f, fd, stream.substr(fds_at), in);
  if (half_close) ::shutdown(fd, SHUT_WR);
  for (int i = 0; i < kRounds; ++i) {
    f.Run(1);
    Drain(fd, in);
  }
  conn->Reset();
  for (int i = 0; i < kRounds && (f.server->clients() != 0 || f.host.live() != 0); ++i) f.Run(1);
  Require(f.server->clients() == 0);
  Require(f.host.live() == 0);
  return 0;
}
