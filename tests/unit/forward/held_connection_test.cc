// A local forward's connections held while the link is down (no session): kept until the
// wait bound, then closed so that the client sees the end of the stream (not a reset),
// and let go at once when the client gives up. On a unix-socket listener, in-process.
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>

#include "config/forward_spec.h"
#include "forward/local_forward.h"
#include "forward/pump_set.h"
#include "net/event_loop.h"
#include "net/socket.h"

namespace tether::forward {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kWait = 30s;

// What the client reads within `timeout`: "eof", "reset", "data", "open" or "error".
std::string ClientSees(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) == 0) return "open";
  char buf[64];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0) return "eof";
  if (n > 0) return "data";
  return errno == ECONNRESET ? "reset" : "error";
}

class HeldConnection : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tether-held-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/fwd.sock";
    auto spec = config::ParseForwardSpec(config::ForwardKind::kLocal, path_ + ":127.0.0.1:80");
    ASSERT_TRUE(spec.ok()) << spec.error().ToString();
    auto fwd = LocalForward::Bind(*spec, "testhost");
    ASSERT_TRUE(fwd.ok()) << fwd.error().ToString();
    fwd_ = std::move(*fwd);
    context_.loop = &loop_;
    pumps_ = std::make_unique<PumpSet>(context_);
    StartContext start;
    start.loop = &loop_;
    start.pumps = pumps_.get();
    start.session = nullptr;  // no session: the link is down
    start.max_wait = kWait;
    fwd_->Start(start);
  }
  void TearDown() override {
    fwd_.reset();
    pumps_.reset();
    ::rmdir(dir_.c_str());
  }
  // Runs the loop until `done` or 2 s (bounded: one wake-up per round, at most 100 ms).
  bool LoopUntil(const std::function<bool()>& done) {
    auto deadline = Clock::now() + 2s;
    while (!done() && Clock::now() < deadline) {
      if (!loop_.RunOnce(20ms).ok()) return false;
    }
    return done();
  }
  UniqueFd HeldClient() {
    auto c = net::ConnectUnix(path_);
    EXPECT_TRUE(c.ok()) << c.error().ToString();
    if (!c.ok()) return UniqueFd();
    size_t before = fwd_->waiting();
    EXPECT_TRUE(LoopUntil([&] { return fwd_->waiting() == before + 1; }));
    return std::move(*c);
  }

  std::string dir_, path_;
  net::EventLoop loop_;
  PumpContext context_;
  std::unique_ptr<PumpSet> pumps_;
  std::unique_ptr<LocalForward> fwd_;
};

TEST_F(HeldConnection, IsKeptUntilTheBoundThenClosedWithAnEndOfStream) {
  auto before = Clock::now();  // the connections were accepted after this
  UniqueFd quiet = HeldClient();
  UniqueFd spoke = HeldClient();  // has sent its request, unread by the forward
  ASSERT_TRUE(quiet.valid() && spoke.valid());
  ASSERT_EQ(::send(spoke.get(), "GET / HTTP/1.0\r\n\r\n", 18, MSG_NOSIGNAL), 18);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(loop_.RunOnce(20ms).ok());  // sees the request

  EXPECT_EQ(fwd_->ExpireWaiting(before + kWait - 1s, kWait), 0u);
  EXPECT_EQ(fwd_->waiting(), 2u);
  EXPECT_EQ(ClientSees(quiet.get(), 0ms), "open");
  EXPECT_EQ(ClientSees(spoke.get(), 0ms), "open");

  EXPECT_EQ(fwd_->ExpireWaiting(Clock::now() + kWait, kWait), 2u);
  EXPECT_EQ(fwd_->waiting(), 0u);
  EXPECT_EQ(ClientSees(quiet.get(), 1s), "eof");
  EXPECT_EQ(ClientSees(spoke.get(), 1s), "eof") << "closed with its request unread";
  EXPECT_EQ(fwd_->stats()->failed.load(), 2u);
}

TEST_F(HeldConnection, IsLetGoWhenTheClientGivesUp) {
  UniqueFd a = HeldClient();
  UniqueFd b = HeldClient();
  ASSERT_EQ(fwd_->waiting(), 2u);
  a.Reset();
  EXPECT_TRUE(LoopUntil([&] { return fwd_->waiting() == 1; }));
  b.Reset();
  EXPECT_TRUE(LoopUntil([&] { return fwd_->waiting() == 0; }));
  EXPECT_EQ(fwd_->stats()->failed.load(), 0u) << "a client that left is not a failure";
}

}  // namespace
}  // namespace tether::forward
