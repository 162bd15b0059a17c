// What the pump's and the pump set's tests share: a context on a real event loop, and for
// each stream a socketpair whose far end plays the local client, with helpers to move
// bytes through it without blocking. Loop thread only.
#pragma once

#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "forward/forward_stats.h"
#include "forward/pump.h"
#include "forward/window_budget.h"
#include "net/event_loop.h"

namespace tether::forward::testing {

// A connected pair: `local` goes to the pump, `peer` is the client's end.
struct SocketPair {
  UniqueFd local;
  UniqueFd peer;
};

// `send_buffer`: when set, the local end's SO_SNDBUF, so that a reader that does not read
// fills it quickly.
inline SocketPair MakeSocketPair(int send_buffer = 0) {
  int sv[2] = {-1, -1};
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  if (send_buffer > 0) {
    EXPECT_EQ(::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer), 0);
  }
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

// What the client side has received: all it could read now; `eof` once the pump shut
// the socket for writing.
struct Received {
  std::string bytes;
  bool eof = false;
};
inline Received ReadAll(int fd) {
  Received r;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      r.bytes.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) r.eof = true;
    break;
  }
  return r;
}

inline void WriteAll(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

// Bytes waiting in `fd`'s receive queue: what the pump has not read from its socket.
inline int Unread(int fd) {
  int n = -1;
  EXPECT_EQ(::ioctl(fd, FIONREAD, &n), 0);
  return n;
}

// Distinct bytes, so that a reordering or a loss shows.
inline std::string Pattern(size_t n, size_t from = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (from + i) % 23);
  return s;
}

// The loop, scratch buffer and budget pumps share, as a daemon has them.
class PumpContextRig {
 public:
  explicit PumpContextRig(size_t budget_bytes = size_t{1} << 30)
      : scratch_(kScratchBytes), budget_(budget_bytes) {
    context_.loop = &loop_;
    context_.scratch = scratch_.data();
    context_.scratch_size = scratch_.size();
    context_.budget = &budget_;
  }

  // Runs the loop's handlers for what is ready now, a few wake-ups, without waiting.
  void Spin() {
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(loop_.RunOnce(std::chrono::milliseconds(0)).ok());
  }

  net::EventLoop& loop() { return loop_; }
  PumpContext& context() { return context_; }
  WindowBudget& budget() { return budget_; }

 private:
  // Smaller than a daemon's (kMaxWindow): the pump reads no more than this at once.
  static constexpr size_t kScratchBytes = 1u << 20;
  net::EventLoop loop_;
  std::vector<char> scratch_;
  WindowBudget budget_;
  PumpContext context_;
};

}  // namespace tether::forward::testing
