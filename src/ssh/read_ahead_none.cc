// The read-ahead where it cannot work (every platform but Linux; see read_ahead.h): a
// recv(2) or poll(2) defined in tether does not reach libssh there (macOS's two-level
// namespace binds libssh's calls to libSystem's when libssh is linked). The same interface
// with nothing registered: libssh reads its socket 4 KiB at a time, as without it, and the
// mode is "off".
#include <sys/socket.h>

#include "ssh/read_ahead.h"

namespace tether::ssh {
namespace {

constexpr const char* kNotBuilt =
    "not built for this platform: libssh reads its socket 4096 bytes at a time";

}  // namespace

ReadAhead::ReadAhead(ssh_session) : fd_(-1), current_fd_(nullptr), context_(nullptr) {}

ReadAhead::ReadAhead(int fd, int (*current_fd)(void*), void* context)
    : fd_(fd), current_fd_(current_fd), context_(context) {}

ReadAhead::~ReadAhead() = default;

ReadAhead::Scope::Scope() = default;
ReadAhead::Scope::~Scope() = default;

uint64_t ReadAhead::UndrainedScopes() { return 0; }

ReadAheadVerdict ReadAhead::CheckInterception(int, const std::function<void(int fd)>&) {
  return {ReadAheadMode::kOff, kNotBuilt, 0};
}

ReadAheadVerdict ReadAhead::CheckLibssh() { return {ReadAheadMode::kOff, kNotBuilt, 0}; }

ReadAhead* ReadAhead::Find(int) { return nullptr; }

long ReadAhead::Receive(int fd, void* out, size_t len) {
  return static_cast<long>(::recv(fd, out, len, 0));
}

bool ReadAhead::Readable(int) { return false; }

bool ReadAhead::Owns(int) { return false; }

}  // namespace tether::ssh
