#include "ssh/jump_relay.h"

#include <libssh/libssh.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "net/socket.h"
#include "ssh/session.h"

namespace tether::ssh {
namespace {

// Socket buffers of the pair: enough to keep a long link's window busy.
constexpr int kPairBufferBytes = 4 << 20;

// Takes what was written to the wake eventfd, so that the next poll blocks again.
void Consume(int wake) {
  uint64_t count = 0;
  [[maybe_unused]] ssize_t n = ::read(wake, &count, sizeof count);
}

// Writes all of `data` to the socket, waiting for room (or for `wake`); false when the peer
// is gone or `stop` is set.
bool SendAll(int fd, const char* data, size_t len, const std::atomic<bool>& stop, int wake) {
  while (len > 0 && !stop.load()) {
    ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      pollfd p[2] = {{fd, POLLOUT, 0}, {wake, POLLIN, 0}};
      ::poll(p, 2, -1);
      if ((p[1].revents & POLLIN) != 0) Consume(wake);
      continue;
    }
    return false;
  }
  return len == 0;
}

}  // namespace

Result<std::unique_ptr<JumpRelay>> JumpRelay::Open(std::unique_ptr<Session> via,
                                                   const std::string& via_alias,
                                                   const std::string& host, uint16_t port) {
  ssh_session s = via->raw();
  ssh_channel ch = ssh_channel_new(s);
  if (ch == nullptr) return MakeError(ErrorCode::kConnect, via_alias + ": cannot create a channel");
  if (ssh_channel_open_forward(ch, host.c_str(), port, "127.0.0.1", 0) != SSH_OK) {
    std::string why = ssh_get_error(s);
    ssh_channel_free(ch);
    return MakeError(ErrorCode::kConnect,
                     "jump host " + via_alias + " could not reach " +
                         net::FormatHostPort(host, port) + ": " + why,
                     "check that " + via_alias + " reaches it (`ssh " + via_alias + " nc -zv " +
                         host + " " + std::to_string(port) +
                         "`) and that its sshd allows forwarding (AllowTcpForwarding, PermitOpen)");
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    ssh_channel_free(ch);
    return ErrnoError(ErrorCode::kConnect, "socketpair", errno);
  }
  for (int fd : pair) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kPairBufferBytes, sizeof kPairBufferBytes);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kPairBufferBytes, sizeof kPairBufferBytes);
  }
  std::unique_ptr<JumpRelay> relay(new JumpRelay());
  relay->wake_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!relay->wake_) {
    int err = errno;
    ::close(pair[0]);
    ::close(pair[1]);
    ssh_channel_free(ch);
    return ErrnoError("connect", "eventfd", err);
  }
  relay->via_ = std::move(via);
  relay->channel_ = ch;
  relay->inner_.Reset(pair[0]);
  relay->outer_.Reset(pair[1]);
  (void)net::SetNonBlocking(relay->inner_.get());
  relay->thread_ = std::thread([r = relay.get()] { r->Run(); });
  return relay;
}

void JumpRelay::Wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

JumpRelay::~JumpRelay() {
  stop_.store(true);
  Wake();
  // The thread may sit in a blocking ssh_channel_write on a link that just died: shut the
  // jump session's socket so that it fails now, not after libssh's timeout, and the
  // daemon's loop (which destroys us on a lost link) is not held up.
  if (thread_.joinable()) {
    ::shutdown(ssh_get_fd(via_->raw()), SHUT_RDWR);
    ::shutdown(inner_.get(), SHUT_RDWR);
    thread_.join();
  }
  auto ch = static_cast<ssh_channel>(channel_);
  if (ch != nullptr) ssh_channel_free(ch);
  // via_ disconnects the jump session (and, through its own relay, any hop before it).
}

void JumpRelay::Pause() {
  if (!thread_.joinable()) return;
  pause_.store(true);
  Wake();
  thread_.join();
  pause_.store(false);
  via_->PauseRelays();
}

void JumpRelay::Resume() {
  via_->ResumeRelays();
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void JumpRelay::Run() {
  RunRounds();
  // Over for good (not paused): the session on our socket must learn it at once, not by
  // its keepalive seconds later.
  if (!pause_.load()) ::shutdown(inner_.get(), SHUT_RDWR);
}

void JumpRelay::RunRounds() {
  auto ch = static_cast<ssh_channel>(channel_);
  ssh_session s = via_->raw();
  std::vector<char> buf(kJumpRelayWindow);
  bool inner_eof = false;    // the next session closed its end
  bool channel_eof = false;  // the jump host's side closed
  // True when libssh may hold decrypted channel data that no socket readiness announces
  // (read from the socket inside ssh_channel_write, or more than one round's worth): the
  // next poll only looks, it does not wait.
  bool maybe_buffered = true;
  while (!stop_.load() && !pause_.load()) {
    // Waits for bytes on either side or for Wake() (stop, pause): with nothing to move the
    // thread sleeps, it does not tick. A closed inner end is left out (fd -1), not polled
    // for nothing: poll reports its POLLHUP whatever was asked, and the thread would spin.
    pollfd fds[3] = {{inner_eof ? -1 : inner_.get(), POLLIN, 0},
                     {ssh_get_fd(s), POLLIN, 0},
                     {wake_.get(), POLLIN, 0}};
    ::poll(fds, 3, maybe_buffered ? 0 : -1);
    if ((fds[2].revents & POLLIN) != 0) Consume(wake_.get());
    maybe_buffered = false;
    // Channel to socket: everything libssh has, until it has nothing. The count grows the
    // window to it.
    int round = 0;
    for (; round < 64 && !channel_eof; ++round) {
      int n = ssh_channel_read_timeout(ch, buf.data(), static_cast<uint32_t>(buf.size()), 0, 0);
      if (n > 0) {
        if (!SendAll(inner_.get(), buf.data(), static_cast<size_t>(n), stop_, wake_.get())) {
          return;
        }
        continue;
      }
      if (n == SSH_ERROR || ssh_channel_is_eof(ch) != 0 || ssh_channel_is_closed(ch) != 0) {
        channel_eof = true;
        ::shutdown(inner_.get(), SHUT_WR);
      }
      break;
    }
    if (round == 64) maybe_buffered = true;
    if (ssh_is_connected(s) == 0) return;  // the jump session died: our end closes
    // Socket to channel. ssh_channel_write blocks (this session is in blocking mode)
    // until the window allows, handling incoming packets meanwhile.
    if (!inner_eof && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::recv(inner_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) {
        if (ssh_channel_write(ch, buf.data(), static_cast<uint32_t>(n)) != n) return;
        maybe_buffered = true;
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        inner_eof = true;
        ssh_channel_send_eof(ch);
      }
    }
    if (inner_eof && channel_eof) return;
  }
}

}  // namespace tether::ssh
