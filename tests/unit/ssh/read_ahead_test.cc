// ReadAhead over a real socket pair: the recv(2) and poll(2) that tether defines serve a
// registered socket from one large read, keep the byte order across Scopes, and leave every
// other socket, flag and descriptor to the C library.
#include "ssh/read_ahead.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace tether::ssh {
namespace {

// A socket pair: `ours` is registered, the test writes into `peer`.
class ReadAheadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    ours_ = fds[0];
    peer_ = fds[1];
    current_ = ours_;
  }
  void TearDown() override {
    ::close(ours_);
    ::close(peer_);
  }

  // What the session says its socket is: ours_, until a test says libssh closed it.
  static int CurrentFd(void* self) { return static_cast<ReadAheadTest*>(self)->current_; }

  void Send(const std::string& data) {
    ASSERT_EQ(::send(peer_, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  }

  // One recv of up to `n` bytes, as libssh makes them.
  std::string Recv(size_t n) {
    std::string out(n, '\0');
    ssize_t got = ::recv(ours_, out.data(), n, 0);
    out.resize(got > 0 ? static_cast<size_t>(got) : 0);
    return out;
  }

  int ours_ = -1;
  int peer_ = -1;
  int current_ = -1;
};

std::string Numbered(size_t n, size_t from = 0) {
  std::string s;
  for (size_t i = from; s.size() < n; ++i) s += std::to_string(i) + ",";
  s.resize(n);
  return s;
}

TEST_F(ReadAheadTest, InsideAScopeOneReadTakesAllAndLaterRecvsAreServedFromIt) {
  ReadAhead ahead(ours_, &CurrentFd, this);
  const std::string data = Numbered(100000);
  Send(data);
  std::string got;
  {
    ReadAhead::Scope scope;
    got = Recv(4096);
    EXPECT_EQ(got.size(), 4096u);
    EXPECT_EQ(ahead.pending(), data.size() - 4096);  // the kernel's queue came in one read
    // Nothing is left in the kernel, yet poll reports the socket readable (at once; a
    // wrong answer waits out the 5 s and returns 0).
    pollfd p{ours_, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 5000), 1);
    EXPECT_EQ(p.revents, POLLIN);
    while (ahead.pending() > 0) got += Recv(4096);
  }
  EXPECT_EQ(got, data);
  // Empty: poll goes back to the kernel, which has nothing.
  pollfd p{ours_, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
}

TEST_F(ReadAheadTest, BytesLeftAtTheEndOfAScopeComeFirstAfterItThenTheKernelsDirectly) {
  ReadAhead ahead(ours_, &CurrentFd, this);
  const std::string first = Numbered(20000);
  const std::string second = Numbered(20000, 50000);
  Send(first);
  std::string got;
  {
    ReadAhead::Scope scope;
    got = Recv(1000);
  }
  Send(second);
  // Outside any Scope: what was read ahead first, then the kernel's queue, read at the
  // caller's size without filling the buffer again.
  while (ahead.pending() > 0) got += Recv(4096);
  EXPECT_EQ(got, first);
  std::string rest = Recv(3000);
  EXPECT_EQ(rest.size(), 3000u);
  EXPECT_EQ(ahead.pending(), 0u);
  while (got.size() + rest.size() < first.size() + second.size()) rest += Recv(65536);
  EXPECT_EQ(got + rest, first + second);
}

TEST_F(ReadAheadTest, PollOutsideAScopeAsksTheKernelEvenWithBytesWaiting) {
  ReadAhead ahead(ours_, &CurrentFd, this);
  Send(Numbered(10000));
  {
    ReadAhead::Scope scope;
    (void)Recv(100);
  }
  ASSERT_GT(ahead.pending(), 0u);
  pollfd p{ours_, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);  // the event loop's view: nothing new in the kernel
}

TEST_F(ReadAheadTest, ASocketTheSessionNoLongerHasIsNotServedFromTheBuffer) {
  ReadAhead ahead(ours_, &CurrentFd, this);
  Send("old bytes of a closed session");
  {
    ReadAhead::Scope scope;
    EXPECT_EQ(Recv(4), "old ");
  }
  // libssh closed its socket and the kernel gave the number to a new one.
  current_ = -1;
  Send("new");
  ReadAhead::Scope scope;
  pollfd p{ours_, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  EXPECT_EQ(Recv(100), "new");  // the kernel's: the old session's bytes are gone
  EXPECT_EQ(ahead.pending(), 0u);
}

TEST_F(ReadAheadTest, FlagsOtherSocketsAndErrorsPassThrough) {
  ReadAhead ahead(ours_, &CurrentFd, this);
  Send("peek");
  ReadAhead::Scope scope;
  char buf[16];
  EXPECT_EQ(::recv(ours_, buf, sizeof buf, MSG_PEEK), 4);
  EXPECT_EQ(ahead.pending(), 0u);  // a peek is not read ahead
  EXPECT_EQ(::recv(ours_, buf, 2, 0), 2);
  // Another socket pair: untouched.
  int other[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, other), 0);
  ASSERT_EQ(::send(other[1], "x", 1, 0), 1);
  EXPECT_EQ(::recv(other[0], buf, sizeof buf, MSG_DONTWAIT), 1);
  errno = 0;
  EXPECT_EQ(::recv(other[0], buf, sizeof buf, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  ::close(other[0]);
  ::close(other[1]);
  errno = 0;
  EXPECT_EQ(::recv(-1, buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, EBADF);
}

TEST_F(ReadAheadTest, TheEndOfTheStreamAndUnregisteringReachTheCaller) {
  {
    ReadAhead ahead(ours_, &CurrentFd, this);
    Send("last");
    ::shutdown(peer_, SHUT_WR);
    ReadAhead::Scope scope;
    EXPECT_EQ(Recv(2), "la");
    EXPECT_EQ(Recv(100), "st");
    char c;
    EXPECT_EQ(::recv(ours_, &c, 1, 0), 0);  // EOF, as the kernel says it
  }
  EXPECT_EQ(ReadAhead::Find(ours_), nullptr);
}

}  // namespace
}  // namespace tether::ssh
