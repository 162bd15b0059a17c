#include "net/connect_pool.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <fcntl.h>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/socket.h"

namespace tether::net {
namespace {

using namespace std::chrono_literals;

// Runs `loop` until `done` holds, for at most `bound` (then `done` is simply false).
void RunUntil(EventLoop& loop, const std::function<bool()>& done, std::chrono::seconds bound) {
  auto end = std::chrono::steady_clock::now() + bound;
  while (!done() && std::chrono::steady_clock::now() < end) {
    ASSERT_TRUE(loop.RunOnce(20ms).ok());
  }
}

struct Listener {
  UniqueFd fd;
  uint16_t port = 0;
};

Listener Listen() {
  Listener l;
  auto fds = ListenTcp("127.0.0.1", 0);
  EXPECT_TRUE(fds.ok());
  if (!fds.ok()) return l;
  l.fd = std::move((*fds)[0]);
  auto port = LocalPort(l.fd.get());
  EXPECT_TRUE(port.ok());
  if (port.ok()) l.port = *port;
  return l;
}

// A loopback port that drops SYNs, as a blackholed destination does: a listener with a
// backlog of zero whose one queued connection is never accepted. The kernel drops every
// further SYN while the accept queue is full, so a connect to it waits out its timeout.
class StalledListener {
 public:
  StalledListener() {
    listener_ = Listen();
    EXPECT_EQ(::listen(listener_.fd.get(), 0), 0);
    auto filler = ConnectTcp("127.0.0.1", listener_.port, 2s);
    EXPECT_TRUE(filler.ok());
    if (filler.ok()) filler_ = std::move(*filler);
  }
  uint16_t port() const { return listener_.port; }

 private:
  Listener listener_;
  UniqueFd filler_;
};

SocketAddress Loopback(uint16_t port) {
  auto a = NumericAddress("127.0.0.1", port);
  EXPECT_TRUE(a.has_value());
  return a.value_or(SocketAddress{});
}

struct Outcome {
  std::optional<Result<UniqueFd>> result;
  bool done() const { return result.has_value(); }
};

ConnectPool::Done Into(Outcome& outcome) {
  return [&outcome](Result<UniqueFd> r) { outcome.result.emplace(std::move(r)); };
}

// A resolver that answers from a table (on the workers' thread, like the real one).
ConnectPool::Resolver TableResolver(std::map<std::string, std::vector<SocketAddress>> table) {
  return [table](const std::string& host, uint16_t) -> Result<std::vector<SocketAddress>> {
    auto it = table.find(host);
    if (it == table.end()) return MakeError(ErrorCode::kResolve, "unknown " + host);
    return it->second;
  };
}

TEST(StalledListener, DropsConnects) {
  StalledListener stalled;
  auto c = ConnectTcp("127.0.0.1", stalled.port(), 300ms);
  ASSERT_FALSE(c.ok()) << "the stalled listener accepted a connection: the tests below "
                          "would measure nothing";
  EXPECT_EQ(c.error().sys_errno, ETIMEDOUT) << c.error().ToString();
}

TEST(ConnectPool, ConnectsToALoopbackListenerWithANonBlockingSocket) {
  EventLoop loop;
  ConnectPool pool(loop);
  Listener live = Listen();
  Outcome out;
  pool.Connect("127.0.0.1", live.port, "", 5s, Into(out));
  EXPECT_FALSE(out.done()) << "the callback ran inside Connect";
  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  ASSERT_TRUE(out.done());
  ASSERT_TRUE(out.result->ok()) << out.result->error().ToString();
  EXPECT_TRUE(::fcntl((*out.result)->get(), F_GETFL) & O_NONBLOCK);
  EXPECT_EQ(pool.pending(), 0u);
}

TEST(ConnectPool, ReportsARefusedPort) {
  EventLoop loop;
  ConnectPool pool(loop);
  uint16_t closed;
  {
    Listener gone = Listen();
    closed = gone.port;
  }
  Outcome out;
  pool.Connect("127.0.0.1", closed, "", 5s, Into(out));
  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  ASSERT_TRUE(out.done());
  ASSERT_FALSE(out.result->ok());
  EXPECT_EQ(out.result->error().code, ErrorCode::kConnect);
  EXPECT_EQ(out.result->error().sys_errno, ECONNREFUSED);
}

// More blackholed connects than there ever were worker threads, each with a long
// timeout: a connect to a live target made after them is served while they all still
// wait. When connects held workers, it waited for their 60 s.
TEST(ConnectPool, BlackholedTargetsDoNotDelayAConnectToALiveOne) {
  EventLoop loop;
  ConnectPool pool(loop);
  StalledListener stalled;
  Listener live = Listen();
  std::vector<Outcome> held(16);
  for (auto& h : held) pool.Connect("127.0.0.1", stalled.port(), "", 60s, Into(h));
  Outcome out;
  pool.Connect("127.0.0.1", live.port, "", 60s, Into(out));

  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  ASSERT_TRUE(out.done()) << "the live target waited behind the blackholed ones";
  EXPECT_TRUE(out.result->ok()) << out.result->error().ToString();
  for (auto& h : held) EXPECT_FALSE(h.done());
}

TEST(ConnectPool, NamesResolvedSlowlyDoNotDelayANumericAddress) {
  EventLoop loop;
  std::atomic<bool> release{false};
  ConnectPool pool(loop, [&](const std::string&, uint16_t) -> Result<std::vector<SocketAddress>> {
    for (int i = 0; i < 1000 && !release; ++i) std::this_thread::sleep_for(10ms);
    return MakeError(ErrorCode::kResolve, "slow");
  });
  Listener live = Listen();
  std::vector<Outcome> slow(kResolveWorkers + 2);
  for (auto& s : slow) pool.Connect("slow.test", 80, "", 60s, Into(s));
  Outcome out;
  pool.Connect("127.0.0.1", live.port, "", 60s, Into(out));
  RunUntil(
      loop, [&] { return out.done(); }, 5s);
  bool served = out.done();
  release = true;
  ASSERT_TRUE(served);
  EXPECT_TRUE(out.result->ok());
  RunUntil(
      loop, [&] { return pool.pending() == 0; }, 20s);
  EXPECT_EQ(pool.pending(), 0u);
}

TEST(ConnectPool, TriesTheNextAddressBesideOneThatDoesNotAnswer) {
  EventLoop loop;
  StalledListener stalled;
  Listener live = Listen();
  ConnectPool pool(loop,
                   TableResolver({{"two.test", {Loopback(stalled.port()), Loopback(live.port)}}}));
  Outcome out;
  pool.Connect("two.test", 0, "", 60s, Into(out));
  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  ASSERT_TRUE(out.done());
  ASSERT_TRUE(out.result->ok()) << out.result->error().ToString();
  auto peer_port = [](int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  };
  EXPECT_EQ(peer_port((*out.result)->get()), live.port);
}

TEST(ConnectPool, TriesTheNextAddressWhenOneIsRefused) {
  EventLoop loop;
  uint16_t closed;
  {
    Listener gone = Listen();
    closed = gone.port;
  }
  Listener live = Listen();
  ConnectPool pool(loop, TableResolver({{"two.test", {Loopback(closed), Loopback(live.port)}}}));
  Outcome out;
  pool.Connect("two.test", 0, "", 60s, Into(out));
  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  ASSERT_TRUE(out.done());
  EXPECT_TRUE(out.result->ok()) << out.result->error().ToString();
}

TEST(ConnectPool, GivesUpOnAnAddressThatNeverAnswersAtTheTimeout) {
  EventLoop loop;
  StalledListener stalled;
  ConnectPool pool(loop);
  Outcome out;
  pool.Connect("127.0.0.1", stalled.port(), "", 300ms, Into(out));
  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  ASSERT_TRUE(out.done());
  ASSERT_FALSE(out.result->ok());
  EXPECT_EQ(out.result->error().code, ErrorCode::kConnect);
  EXPECT_EQ(out.result->error().sys_errno, ETIMEDOUT);
  EXPECT_EQ(pool.pending(), 0u);
}

TEST(ConnectPool, ReportsANameThatDoesNotResolve) {
  EventLoop loop;
  ConnectPool pool(loop, TableResolver({}));
  Outcome out;
  pool.Connect("nowhere.test", 80, "", 5s, Into(out));
  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  ASSERT_TRUE(out.done());
  ASSERT_FALSE(out.result->ok());
  EXPECT_EQ(out.result->error().code, ErrorCode::kResolve);
}

TEST(ConnectPool, RefusesANameWhoseEveryAddressReachForbids) {
  EventLoop loop;
  Listener live = Listen();
  ConnectPool pool(loop, TableResolver({{"inside.test", {Loopback(live.port)}}}));
  Outcome out;
  pool.Connect("inside.test", 0, "", 5s, Into(out), Reach::kPublic);
  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  ASSERT_TRUE(out.done());
  ASSERT_FALSE(out.result->ok());
  EXPECT_EQ(out.result->error().code, ErrorCode::kPolicy);
}

TEST(ConnectPool, ACancelledConnectNeverCallsBackAndLeavesNothingPending) {
  EventLoop loop;
  StalledListener stalled;
  Listener live = Listen();
  ConnectPool pool(loop);
  Outcome cancelled;
  auto id = pool.Connect("127.0.0.1", stalled.port(), "", 60s, Into(cancelled));
  pool.Cancel(id);
  EXPECT_EQ(pool.pending(), 0u);
  Outcome out;
  pool.Connect("127.0.0.1", live.port, "", 60s, Into(out));
  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  EXPECT_TRUE(out.done());
  EXPECT_FALSE(cancelled.done());
}

TEST(ConnectPool, RefusesJobsBeyondItsBound) {
  EventLoop loop;
  std::atomic<bool> release{false};
  ConnectPool pool(loop, [&](const std::string&, uint16_t) -> Result<std::vector<SocketAddress>> {
    for (int i = 0; i < 1000 && !release; ++i) std::this_thread::sleep_for(10ms);
    return MakeError(ErrorCode::kResolve, "slow");
  });
  std::vector<Outcome> held(kMaxQueuedConnects + 1);
  for (auto& h : held) pool.Connect("slow.test", 80, "", 60s, Into(h));
  RunUntil(
      loop, [&] { return held.back().done(); }, 10s);
  bool refused = held.back().done() && !held.back().result->ok();
  bool front_waits = !held.front().done();
  release = true;
  EXPECT_TRUE(refused);
  EXPECT_TRUE(front_waits);
}

TEST(ConnectPool, ConnectsToAUnixSocket) {
  EventLoop loop;
  ConnectPool pool(loop);
  char dir[] = "/tmp/tether-connect-pool-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/s";
  auto listener = ListenUnix(path);
  ASSERT_TRUE(listener.ok());
  Outcome out;
  pool.Connect("", 0, path, 5s, Into(out));
  RunUntil(
      loop, [&] { return out.done(); }, 10s);
  ASSERT_TRUE(out.done());
  EXPECT_TRUE(out.result->ok()) << out.result->error().ToString();
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace tether::net
