// Larger reads for a libssh session's socket.
//
// libssh (0.10) reads its socket 4 KiB at a time, one poll(2) before each recv(2): two
// system calls per 4 KiB, which at gigabits per second is a good part of the receive
// path's CPU. A ReadAhead gives libssh the same bytes from one recv of up to kCapacity:
// tether defines recv(2) and poll(2) (read_ahead.cc), so the calls libssh makes resolve
// to them before the C library's, and for a registered socket they
//   - recv: hand out what the buffer holds; when it is empty and the calling thread is
//     inside a Scope, fill it with one large recv first;
//   - poll, inside a Scope: report the socket readable at once while the buffer holds
//     bytes (as the kernel would while its own queue holds them), without a system call.
// Every other descriptor, and every other flag of recv, goes straight to the C library.
//
// Order is kept because bytes enter the buffer only inside a Scope and the Scope's owner
// drains it before leaving (Pending() says whether to poll the session again): outside a
// Scope the buffer is empty and recv reads the kernel's queue directly, as without this.
// A ReadAhead belongs to the thread that runs its session: it must be made and destroyed
// there, and only that thread's recv and poll use it. It checks on every call that libssh
// still has its socket (a descriptor libssh closed and the kernel gave out again is not
// served from it).
#pragma once

#include <libssh/libssh.h>

#include <cstddef>
#include <memory>
#include <thread>

namespace tether::ssh {

class ReadAhead {
 public:
  // One read's worth: a 256 KiB recv takes what a gigabit link brings in 2 ms.
  static constexpr size_t kCapacity = 256u << 10;

  // Registers `session`'s socket (it must be open). Unregisters on destruction; destroy
  // it before the session is freed.
  explicit ReadAhead(ssh_session session);
  // Registers `fd`, which stays ours while current_fd(context) returns it (for a session,
  // ssh_get_fd).
  ReadAhead(int fd, int (*current_fd)(void* context), void* context);
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Bytes read from the socket that libssh has not taken yet.
  size_t pending() const { return end_ - begin_; }

  // While one exists on a thread, recv on a registered socket may fill its buffer.
  class Scope {
   public:
    Scope();
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };

  // For read_ahead.cc's recv and poll: this thread's ReadAhead of `fd`, or null.
  static ReadAhead* Find(int fd);
  // recv(2) of the registered socket `fd`, for `len` bytes (see the header comment).
  long Receive(int fd, void* out, size_t len);
  // True if libssh still has `fd` open as this session's socket; drops the buffer if not.
  bool Owns(int fd);

 private:
  std::thread::id owner_ = std::this_thread::get_id();
  int fd_;
  int (*current_fd_)(void*);
  void* context_;
  std::unique_ptr<char[]> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace tether::ssh
