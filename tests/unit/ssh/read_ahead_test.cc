// ReadAhead over a real socket pair: the recv(2) and poll(2) that tether defines serve a
// registered socket from one large read, keep the byte order across Scopes, and leave every
// other socket, flag and descriptor to the C library; the switch turns it off; the
// self-check tells reads that reach tether's definitions from reads that go around them,
// and finds libssh's own reads reaching them in this build.
#include "ssh/read_ahead.h"

#include <dirent.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>
#include <thread>

#include "test_support/scoped_env.h"

namespace tether::ssh {
namespace {

using test_support::ScopedEnv;

// A socket pair: `ours` is registered, the test writes into `peer`. The switch is unset
// (the runner's own must not decide), so the mode is the self-check's.
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

  ScopedEnv unset_{kReadAheadSwitch, nullptr};

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
  const uint64_t undrained = ReadAhead::UndrainedScopes();
  {
    ReadAhead::Scope scope;
    got = Recv(1000);
  }
  EXPECT_EQ(ReadAhead::UndrainedScopes(), undrained + 1);  // the rule broken, and counted
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

TEST_F(ReadAheadTest, ADrainThatPollsUntilEmptyWithinItsBoundEndsEveryScopeEmpty) {
  ReadAhead ahead(ours_, &CurrentFd, this);
  // Four buffers' worth, from a writer of its own: the kernel queues less than a buffer.
  const std::string data = Numbered(4 * ReadAhead::kCapacity);
  std::thread writer([&] {
    for (size_t sent = 0; sent < data.size();) {
      ssize_t n = ::send(peer_, data.data() + sent, data.size() - sent, 0);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  });
  const uint64_t undrained = ReadAhead::UndrainedScopes();
  std::string got;
  // As Session::Drain with a bound of one poll: on past it while the buffer holds bytes,
  // at most kPollsToEmpty polls more, each taking libssh's read size.
  for (int wake = 0; got.size() < data.size() && wake < 10000; ++wake) {
    ReadAhead::Scope scope;
    for (int i = 0; i < 1 + ReadAhead::kPollsToEmpty && (i < 1 || ahead.pending() > 0); ++i) {
      pollfd p{ours_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) break;
      got += Recv(kLibsshReadSize);
    }
    EXPECT_EQ(ahead.pending(), 0u);
  }
  writer.join();
  EXPECT_EQ(got, data);
  EXPECT_EQ(ReadAhead::UndrainedScopes(), undrained);
}

TEST(ReadAheadSwitch, ZeroOffNoAndFalseTurnItOffAnythingElseLeavesItOn) {
  struct Case {
    const char* value;
    bool off;
  };
  const Case cases[] = {{nullptr, false}, {"", false},   {"1", false},  {"on", false},
                        {"yes", false},   {"0", true},   {"off", true}, {"no", true},
                        {"false", true},  {"00", false}, {"OFF", false}};
  for (const Case& c : cases) {
    EXPECT_EQ(ReadAheadSwitchedOff(c.value), c.off) << (c.value ? c.value : "(unset)");
  }
}

TEST_F(ReadAheadTest, WithTheSwitchOffNothingIsRegisteredAndRecvReadsAsLibsshAsks) {
  ScopedEnv off(kReadAheadSwitch, "0");
  EXPECT_EQ(ReadAheadStatus(), ReadAheadMode::kOff);
  ReadAhead ahead(ours_, &CurrentFd, this);
  EXPECT_FALSE(ahead.registered());
  EXPECT_EQ(ReadAhead::Find(ours_), nullptr);
  Send(Numbered(10000));
  ReadAhead::Scope scope;
  EXPECT_EQ(Recv(kLibsshReadSize).size(), kLibsshReadSize);
  EXPECT_EQ(ahead.pending(), 0u);
  // The rest is still the kernel's: poll asks it, and it says readable.
  pollfd p{ours_, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 1);
  EXPECT_EQ(Recv(100000).size(), 10000u - kLibsshReadSize);
}

TEST_F(ReadAheadTest, WithTheSwitchUnsetTheModeIsTheSelfChecksAndSocketsAreRegistered) {
  EXPECT_EQ(ReadAheadStatus(), ReadAheadMode::kActive);
  ReadAhead ahead(ours_, &CurrentFd, this);
  EXPECT_TRUE(ahead.registered());
  EXPECT_EQ(ReadAhead::Find(ours_), &ahead);
}

// The C library's recv and poll, as a libssh bound around tether's would call them: the
// next definitions after the test binary's (tether's are in it).
ssize_t LibcRecv(int fd, void* buf, size_t len, int flags) {
  using Fn = ssize_t (*)(int, void*, size_t, int);
  static const Fn next = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "recv"));
  return next(fd, buf, len, flags);
}

int LibcPoll(pollfd* fds, nfds_t n, int timeout) {
  using Fn = int (*)(pollfd*, nfds_t, int);
  static const Fn next = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "poll"));
  return next(fds, n, timeout);
}

// One poll and one read, as libssh makes them, through the given recv and poll.
template <typename RecvFn, typename PollFn>
std::function<void(int)> ReaderThrough(RecvFn recv_fn, PollFn poll_fn) {
  return [recv_fn, poll_fn](int fd) {
    pollfd p{fd, POLLIN, 0};
    if (poll_fn(&p, 1, 1000) != 1) return;
    char buf[kLibsshReadSize];
    (void)recv_fn(fd, buf, sizeof buf, 0);
  };
}

TEST_F(ReadAheadTest, TheSelfCheckCallsReadsThroughTethersRecvAndPollActive) {
  Send("SSH-2.0-x\r\n");
  const uint64_t undrained = ReadAhead::UndrainedScopes();
  ReadAheadVerdict v = ReadAhead::CheckInterception(ours_, ReaderThrough(::recv, ::poll));
  EXPECT_EQ(v.mode, ReadAheadMode::kActive) << v.detail;
  EXPECT_EQ(v.largest_read, kLibsshReadSize);
  // Nothing of the check stays behind: no slot, no undrained Scope counted.
  EXPECT_EQ(ReadAhead::Find(ours_), nullptr);
  EXPECT_EQ(ReadAhead::UndrainedScopes(), undrained);
}

TEST_F(ReadAheadTest, TheSelfCheckCallsReadsAroundTethersRecvAndPollNotIntercepted) {
  Send("SSH-2.0-x\r\n");
  ReadAheadVerdict v = ReadAhead::CheckInterception(ours_, ReaderThrough(LibcRecv, LibcPoll));
  EXPECT_EQ(v.mode, ReadAheadMode::kNotIntercepted) << v.detail;
  EXPECT_NE(v.detail.find("poll and recv went to the C library"), std::string::npos) << v.detail;
}

TEST_F(ReadAheadTest, AReaderWhosePollGoesAroundTethersIsNotIntercepted) {
  // Bytes read ahead that only tether's poll reports would wait in the buffer unseen.
  Send("SSH-2.0-x\r\n");
  ReadAheadVerdict v = ReadAhead::CheckInterception(ours_, ReaderThrough(::recv, LibcPoll));
  EXPECT_EQ(v.mode, ReadAheadMode::kNotIntercepted) << v.detail;
  EXPECT_NE(v.detail.find("poll went to the C library"), std::string::npos) << v.detail;
}

TEST_F(ReadAheadTest, AReaderWhoseRecvGoesAroundTethersIsNotIntercepted) {
  // A fortified libssh: its recv became __recv_chk, which tether does not define.
  Send("SSH-2.0-x\r\n");
  ReadAheadVerdict v = ReadAhead::CheckInterception(ours_, ReaderThrough(LibcRecv, ::poll));
  EXPECT_EQ(v.mode, ReadAheadMode::kNotIntercepted) << v.detail;
  EXPECT_NE(v.detail.find("recv went to the C library"), std::string::npos) << v.detail;
}

size_t OpenDescriptors() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

TEST(ReadAheadSelfCheck, LibsshOfThisBuildReadsThroughTetherAtItsReadSize) {
  const size_t before = OpenDescriptors();
  ASSERT_GT(before, 0u);
  const uint64_t undrained = ReadAhead::UndrainedScopes();
  ReadAheadVerdict v = ReadAhead::CheckLibssh();
  EXPECT_EQ(v.mode, ReadAheadMode::kActive) << v.detail;
  // The 4096 that drains count in is what this libssh asks for.
  EXPECT_EQ(v.largest_read, kLibsshReadSize) << v.detail;
  EXPECT_EQ(OpenDescriptors(), before);  // the socket pair closed, libssh's end by ssh_free
  EXPECT_EQ(ReadAhead::UndrainedScopes(), undrained);
}

}  // namespace
}  // namespace tether::ssh
