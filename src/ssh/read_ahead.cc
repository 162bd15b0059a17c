// recv and poll are defined here: the C library's inline wrappers must stay out of the way.
#undef _FORTIFY_SOURCE
#include "ssh/read_ahead.h"

#include <dlfcn.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace tether::ssh {
namespace {

// A thread's registered sockets: the daemon's loop has one session, a lane one. A further
// one on the same thread is not registered (it reads 4 KiB at a time, as without this).
constexpr int kSlots = 4;

// Per thread, so that a thread never looks at another's session (which that thread may be
// closing and freeing meanwhile): recv and poll see only their own thread's ReadAheads.
thread_local ReadAhead* t_slots[kSlots] = {};
thread_local int t_scopes = 0;

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

}  // namespace

ReadAhead::ReadAhead(ssh_session session)
    : ReadAhead(
          ssh_get_fd(session),
          [](void* s) { return static_cast<int>(ssh_get_fd(static_cast<ssh_session>(s))); },
          session) {}

ReadAhead::ReadAhead(int fd, int (*current_fd)(void*), void* context)
    : fd_(fd), current_fd_(current_fd), context_(context), buffer_(new char[kCapacity]) {
  if (fd_ < 0) return;
  // A slot of an older ReadAhead of the same number (its socket closed by libssh and the
  // number given out again) is taken over: Find must answer with the live one.
  for (ReadAhead*& slot : t_slots) {
    if (slot != nullptr && slot->fd_ == fd_) slot = nullptr;
  }
  for (ReadAhead*& slot : t_slots) {
    if (slot == nullptr) {
      slot = this;
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
ReadAhead::Scope::~Scope() { --t_scopes; }

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

long ReadAhead::Receive(int fd, void* out, size_t len) {
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
    if (ahead != nullptr && ahead->pending() > 0 && ahead->Owns(fds[i].fd)) ++ready;
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
