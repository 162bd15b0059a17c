// Larger reads for a libssh session's socket.
//
// libssh (0.10) reads its socket kLibsshReadSize (4 KiB) at a time, one poll(2) before each
// recv(2): two system calls per 4 KiB, which at gigabits per second is a good part of the
// receive path's CPU. A ReadAhead gives libssh the same bytes from one recv of up to
// kCapacity: tether defines recv(2) and poll(2) (read_ahead_linux.cc), so the calls libssh
// makes resolve to them before the C library's, and for a registered socket they
//   - recv: hand out what the buffer holds; when it is empty and the calling thread is
//     inside a Scope, fill it with one large recv first;
//   - poll, inside a Scope: report the socket readable at once while the buffer holds
//     bytes (as the kernel would while its own queue holds them), without a system call.
// Every other descriptor, and every other flag of recv, goes straight to the C library.
//
// Order is kept because bytes enter the buffer only inside a Scope and the Scope's owner
// drains it before leaving (pending() says whether to poll the session again): outside a
// Scope the buffer is empty and recv reads the kernel's queue directly, as without this.
// Bytes left at a Scope's end are still served first, but the event loop's own poll asks
// the kernel, which may have nothing more to say: libssh would not see them until the
// server sends again. UndrainedScopes() counts such ends, and the first one is logged.
// A ReadAhead belongs to the thread that runs its session: it must be made and destroyed
// there, and only that thread's recv and poll use it. It checks on every call that libssh
// still has its socket (a descriptor libssh closed and the kernel gave out again is not
// served from it).
//
// That libssh's calls reach tether's definitions is a property of the build, not of the
// code: an ELF dynamic linker resolves libssh's undefined recv and poll to the
// executable's, but a libssh built with a fortified recv (__recv_chk) or linked with
// direct bindings, or macOS's two-level namespace, bypasses them. So the interposition is
// built on Linux only (other platforms build read_ahead_none.cc: the same interface,
// nothing registered, mode "off"), and ReadAheadStatus() checks once per process that
// libssh's own reads really go through it before any ReadAhead registers a socket.
// TETHER_READ_AHEAD=0 turns it off (docs/internals.md).
#pragma once

#include <libssh/libssh.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace tether::ssh {

// What libssh asks of recv(2) per readable poll: libssh 0.10's ssh_socket_pollcallback
// (src/socket.c) makes one ssh_socket_unbuffered_read of MAX_BUF_SIZE
// (include/libssh/priv.h) into its input buffer each time the socket polls readable.
// Drains count their polls in it; the self-check logs what libssh really asked for.
inline constexpr size_t kLibsshReadSize = 4096;

// Whether libssh's socket reads go through a ReadAhead in this process (`status --json`,
// "read_ahead").
enum class ReadAheadMode {
  kActive,          // "active": the self-check saw libssh's recv and poll reach tether's
  kOff,             // "off": TETHER_READ_AHEAD=0, or not built for this platform
  kNotIntercepted,  // "not intercepted": the self-check saw libssh read around them
};
std::string_view ToString(ReadAheadMode mode);

// The environment variable that turns the read-ahead off, and whether a value of it does
// ("0", "off", "no", "false"; unset, empty or anything else leaves it on).
inline constexpr const char* kReadAheadSwitch = "TETHER_READ_AHEAD";
bool ReadAheadSwitchedOff(const char* value);

// This process's mode; any thread. Off while the switch says so (read at every call),
// else the verdict of ReadAhead::CheckLibssh(), run at the first call and logged once.
ReadAheadMode ReadAheadStatus();

// What a self-check found.
struct ReadAheadVerdict {
  ReadAheadMode mode = ReadAheadMode::kOff;
  std::string detail;       // a sentence for the log
  size_t largest_read = 0;  // the largest count the reader asked of recv on the socket
};

class ReadAhead {
 public:
  // One read's worth: a 256 KiB recv takes what a gigabit link brings in 2 ms.
  static constexpr size_t kCapacity = 256u << 10;
  // Polls of the session that empty a full buffer at libssh's read size: how far a drain
  // goes on past its own bound while pending() is not 0.
  static constexpr int kPollsToEmpty = static_cast<int>(kCapacity / kLibsshReadSize) + 1;

  // Registers `session`'s socket (it must be open) when ReadAheadStatus() is kActive;
  // otherwise registers nothing and libssh reads as without it. Unregisters on
  // destruction; destroy it before the session is freed.
  explicit ReadAhead(ssh_session session);
  // The same for `fd`, which stays ours while current_fd(context) returns it (for a
  // session, ssh_get_fd).
  ReadAhead(int fd, int (*current_fd)(void* context), void* context);
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Bytes read from the socket that libssh has not taken yet.
  size_t pending() const { return end_ - begin_; }
  // Whether recv and poll of the socket go through this (a free slot, the mode active).
  bool registered() const { return buffer_ != nullptr; }

  // While one exists on a thread, recv on a registered socket may fill its buffer.
  class Scope {
   public:
    Scope();
    // The last Scope of a thread to end checks that every buffer of the thread is empty.
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };

  // How many times, in this process, the last Scope of a thread ended with bytes still in
  // a buffer (see the header comment). 0 while every drain runs to the end.
  static uint64_t UndrainedScopes();

  // The self-check's core, and its seam for tests: registers `fd` (a socket with bytes
  // waiting) whatever the mode, runs `read_like_libssh(fd)` inside a Scope, unregisters,
  // and says kActive if that both polled `fd` and read it through tether's poll and recv,
  // kNotIntercepted if not. The bytes it read ahead are dropped.
  static ReadAheadVerdict CheckInterception(int fd,
                                            const std::function<void(int fd)>& read_like_libssh);
  // The start-up self-check: CheckInterception with libssh itself as the reader, a
  // session over a socket pair that is handed a server's banner and polled as a
  // connecting client (no network, no configuration files, under a millisecond).
  static ReadAheadVerdict CheckLibssh();

  // For read_ahead_linux.cc's recv and poll: this thread's ReadAhead of `fd`, or null.
  static ReadAhead* Find(int fd);
  // recv(2) of the registered socket `fd`, for `len` bytes (see the header comment).
  long Receive(int fd, void* out, size_t len);
  // poll(2) inside a Scope, for POLLIN on the registered `fd`: true if the buffer holds
  // bytes and libssh still has `fd`.
  bool Readable(int fd);
  // True if libssh still has `fd` open as this session's socket; drops the buffer if not.
  bool Owns(int fd);

 private:
  // Registers whatever the mode (the self-check's own socket).
  struct Always {};
  ReadAhead(int fd, int (*current_fd)(void* context), void* context, Always);
  // Takes a slot of this thread and the buffer, if a slot is free.
  void Register();

  std::thread::id owner_ = std::this_thread::get_id();
  int fd_;
  int (*current_fd_)(void*);
  void* context_;
  std::unique_ptr<char[]> buffer_;  // null when not registered
  size_t begin_ = 0;
  size_t end_ = 0;
  // What the self-check looks at: calls that reached this, and the largest recv asked.
  uint64_t recvs_ = 0;
  uint64_t polls_ = 0;
  size_t largest_read_ = 0;
};

}  // namespace tether::ssh
