// The read-ahead where the dynamic linker lets it work (built on Linux only; see
// read_ahead.h). recv and poll are defined here: the C library's inline wrappers must stay
// out of the way.
#undef _FORTIFY_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "ssh/read_ahead.h"

namespace tether::ssh {
namespace {

// A thread's registered sockets: the daemon's loop has one session, a lane one. A further
// one on the same thread is not registered (it reads 4 KiB at a time, as without this).
constexpr int kSlots = 4;

// Per thread, so that a thread never looks at another's session (which that thread may be
// closing and freeing meanwhile): recv and poll see only their own thread's ReadAheads.
thread_local ReadAhead* t_slots[kSlots] = {};
thread_local int t_scopes = 0;

std::atomic<uint64_t> g_undrained_scopes{0};

// A server's identification line, all the self-check's session needs to read.
constexpr char kSelfCheckBanner[] = "SSH-2.0-tether_read_ahead_check\r\n";
// ssh_connect calls of the self-check: the first polls the socket writable (the client
// sends its banner), the second reads the server's; the rest are margin.
constexpr int kSelfCheckConnectCalls = 6;

using RecvFn = ssize_t (*)(int, void*, size_t, int);
using PollFn = int (*)(struct pollfd*, nfds_t, int);

// The C library's own (or a sanitizer's in front of it): the next definition after ours.
template <typename Fn>
Fn Next(const char* name) {
  void* fn = ::dlsym(RTLD_NEXT, name);
  if (fn == nullptr) std::abort();  // no C library under us: nothing sensible to do
  return reinterpret_cast<Fn>(fn);
}

ssize_t RealRecv(int fd, void* buf, size_t len, int flags) {
  static const RecvFn next = Next<RecvFn>("recv");
  return next(fd, buf, len, flags);
}

int RealPoll(struct pollfd* fds, nfds_t n, int timeout) {
  static const PollFn next = Next<PollFn>("poll");
  return next(fds, n, timeout);
}

bool ActiveNow() { return ReadAheadStatus() == ReadAheadMode::kActive; }

}  // namespace

ReadAhead::ReadAhead(ssh_session session)
    : ReadAhead(
          ssh_get_fd(session),
          [](void* s) { return static_cast<int>(ssh_get_fd(static_cast<ssh_session>(s))); },
          session) {}

ReadAhead::ReadAhead(int fd, int (*current_fd)(void*), void* context)
    : fd_(fd), current_fd_(current_fd), context_(context) {
  if (fd_ >= 0 && ActiveNow()) Register();
}

ReadAhead::ReadAhead(int fd, int (*current_fd)(void*), void* context, Always)
    : fd_(fd), current_fd_(current_fd), context_(context) {
  Register();
}

void ReadAhead::Register() {
  if (fd_ < 0) return;
  // A slot of an older ReadAhead of the same number (its socket closed by libssh and the
  // number given out again) is taken over: Find must answer with the live one.
  for (ReadAhead*& slot : t_slots) {
    if (slot != nullptr && slot->fd_ == fd_) slot = nullptr;
  }
  for (ReadAhead*& slot : t_slots) {
    if (slot == nullptr) {
      slot = this;
      buffer_.reset(new char[kCapacity]);
      return;
    }
  }
}

ReadAhead::~ReadAhead() {
  // Another thread's slots are out of reach: the creator's would keep a dangling pointer.
  if (owner_ != std::this_thread::get_id()) std::abort();
  for (ReadAhead*& slot : t_slots) {
    if (slot == this) slot = nullptr;
  }
}

ReadAhead::Scope::Scope() { ++t_scopes; }

ReadAhead::Scope::~Scope() {
  if (--t_scopes > 0) return;
  for (ReadAhead* slot : t_slots) {
    if (slot == nullptr || slot->pending() == 0) continue;
    if (g_undrained_scopes.fetch_add(1, std::memory_order_relaxed) == 0) {
      spdlog::warn(
          "read-ahead: a drain ended with {} bytes libssh had not taken; they come first on "
          "the next read, which may wait for the server to send again",
          slot->pending());
    }
  }
}

uint64_t ReadAhead::UndrainedScopes() { return g_undrained_scopes.load(std::memory_order_relaxed); }

ReadAhead* ReadAhead::Find(int fd) {
  for (ReadAhead* slot : t_slots) {
    if (slot != nullptr && slot->fd_ == fd) return slot;
  }
  return nullptr;
}

bool ReadAhead::Owns(int fd) {
  if (fd == fd_ && current_fd_(context_) == fd_) return true;
  begin_ = end_ = 0;
  return false;
}

bool ReadAhead::Readable(int fd) {
  ++polls_;
  return pending() > 0 && Owns(fd);
}

long ReadAhead::Receive(int fd, void* out, size_t len) {
  ++recvs_;
  largest_read_ = std::max(largest_read_, len);
  if (begin_ == end_) {
    if (t_scopes == 0) return RealRecv(fd, out, len, 0);
    ssize_t got = RealRecv(fd, buffer_.get(), kCapacity, 0);
    if (got <= 0) return got;
    begin_ = 0;
    end_ = static_cast<size_t>(got);
  }
  size_t n = std::min(len, end_ - begin_);
  std::memcpy(out, buffer_.get() + begin_, n);
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
  return static_cast<long>(n);
}

ReadAheadVerdict ReadAhead::CheckInterception(int fd,
                                              const std::function<void(int fd)>& read_like_libssh) {
  int current = fd;
  ReadAhead ahead(
      fd, [](void* c) { return *static_cast<int*>(c); }, &current, Always{});
  if (!ahead.registered()) {
    return {ReadAheadMode::kNotIntercepted,
            "no free read-ahead slot on this thread for the self-check's socket", 0};
  }
  {
    Scope scope;
    read_like_libssh(fd);
    ahead.begin_ = ahead.end_ = 0;  // the check's bytes, not a drain left short
  }
  ReadAheadVerdict v{ReadAheadMode::kNotIntercepted, "", ahead.largest_read_};
  if (ahead.polls_ == 0 && ahead.recvs_ == 0) {
    v.detail = "libssh's poll and recv went to the C library, not to tether's";
  } else if (ahead.polls_ == 0) {
    v.detail = "libssh's poll went to the C library, not to tether's";
  } else if (ahead.recvs_ == 0) {
    v.detail = "libssh's recv went to the C library (a fortified __recv_chk?), not to tether's";
  } else {
    v.mode = ReadAheadMode::kActive;
    v.detail = "libssh's poll and recv reach tether's; libssh asked for " +
               std::to_string(v.largest_read) + " bytes a read, served from reads of up to " +
               std::to_string(kCapacity);
    if (v.largest_read != kLibsshReadSize) {
      v.detail += ", not the " + std::to_string(kLibsshReadSize) +
                  " drains count their polls in (kLibsshReadSize)";
    }
    return v;
  }
  v.detail += ": reads stay at libssh's " + std::to_string(kLibsshReadSize) + " bytes";
  return v;
}

ReadAheadVerdict ReadAhead::CheckLibssh() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return {ReadAheadMode::kNotIntercepted,
            std::string("the self-check could not make a socket pair: ") + std::strerror(errno), 0};
  }
  const int peer = fds[1];
  ssh_session session = ssh_new();
  bool no = false;
  socket_t ours = fds[0];
  bool ready = session != nullptr &&
               ssh_options_set(session, SSH_OPTIONS_HOST, "read-ahead-self-check") == SSH_OK &&
               ssh_options_set(session, SSH_OPTIONS_PROCESS_CONFIG, &no) == SSH_OK &&
               ssh_options_set(session, SSH_OPTIONS_FD, &ours) == SSH_OK &&
               ::send(peer, kSelfCheckBanner, sizeof kSelfCheckBanner - 1, MSG_NOSIGNAL) ==
                   static_cast<ssize_t>(sizeof kSelfCheckBanner - 1);
  ReadAheadVerdict v{ReadAheadMode::kNotIntercepted, "the self-check could not set up libssh", 0};
  // Once ssh_connect has run, the socket is libssh's: ssh_free closes it (ssh_socket_close),
  // and a failure inside ssh_connect may have closed it already. Never closed twice.
  bool handed = false;
  if (ready) {
    ssh_set_blocking(session, 0);
    handed = true;
    v = CheckInterception(ours, [session](int) {
      for (int i = 0; i < kSelfCheckConnectCalls; ++i) {
        if (ssh_connect(session) == SSH_ERROR) break;
      }
    });
  }
  if (session != nullptr) ssh_free(session);
  if (!handed) ::close(ours);
  ::close(peer);
  return v;
}

}  // namespace tether::ssh

// The definitions libssh's calls resolve to (see read_ahead.h). Anything not about a
// registered socket's plain reads passes through unchanged, errno included.
extern "C" ssize_t recv(int fd, void* buf, size_t len, int flags) {
  using tether::ssh::ReadAhead;
  ReadAhead* ahead = flags == 0 ? ReadAhead::Find(fd) : nullptr;
  if (ahead == nullptr || !ahead->Owns(fd)) return tether::ssh::RealRecv(fd, buf, len, flags);
  return ahead->Receive(fd, buf, len);
}

extern "C" int poll(struct pollfd* fds, nfds_t n, int timeout) {
  using tether::ssh::ReadAhead;
  if (tether::ssh::t_scopes == 0) return tether::ssh::RealPoll(fds, n, timeout);
  int ready = 0;
  for (nfds_t i = 0; i < n; ++i) {
    if ((fds[i].events & POLLIN) == 0) continue;
    ReadAhead* ahead = ReadAhead::Find(fds[i].fd);
    if (ahead != nullptr && ahead->Readable(fds[i].fd)) ++ready;
  }
  if (ready == 0) return tether::ssh::RealPoll(fds, n, timeout);
  // Bytes are waiting in a buffer: those sockets are readable now, and the others can wait
  // for the next poll (the Scope's owner polls again until the buffers are empty).
  for (nfds_t i = 0; i < n; ++i) {
    ReadAhead* ahead = (fds[i].events & POLLIN) != 0 ? ReadAhead::Find(fds[i].fd) : nullptr;
    fds[i].revents = ahead != nullptr && ahead->pending() > 0 ? POLLIN : 0;
  }
  return ready;
}
