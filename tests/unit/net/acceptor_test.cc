#include "net/acceptor.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include "net/socket.h"

namespace tether::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Lowers RLIMIT_NOFILE so that every descriptor number is taken (the next accept fails
// with EMFILE), and puts the limit back when it goes.
class DescriptorTableFull {
 public:
  DescriptorTableFull() {
    EXPECT_EQ(::getrlimit(RLIMIT_NOFILE, &saved_), 0);
    // dup takes the lowest free number: every number below it is in use, and it takes
    // the last one the new limit leaves.
    last_.Reset(::dup(STDERR_FILENO));
    EXPECT_TRUE(last_.valid());
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(last_.get()) + 1;
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  }
  ~DescriptorTableFull() { Release(); }
  void Release() {
    if (released_) return;
    released_ = true;
    EXPECT_EQ(::setrlimit(RLIMIT_NOFILE, &saved_), 0);
    last_.Reset();
  }

 private:
  rlimit saved_{};
  UniqueFd last_;
  bool released_ = false;
};

TEST(Acceptor, HandsOverEveryQueuedConnection) {
  EventLoop loop;
  auto listeners = ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(listeners.ok()) << listeners.error().ToString();
  auto port = LocalPort((*listeners)[0].get());
  ASSERT_TRUE(port.ok());
  int accepted = 0;
  Acceptor acceptor(loop, (*listeners)[0].get(), "test", 2, [&](UniqueFd) { ++accepted; });

  std::vector<UniqueFd> clients;
  for (int i = 0; i < 5; ++i) {
    auto c = ConnectTcp("127.0.0.1", *port, 2s);
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    clients.push_back(std::move(*c));
  }
  for (int round = 0; round < 100 && accepted < 5; ++round) ASSERT_TRUE(loop.RunOnce(20ms).ok());

  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(acceptor.pauses(), 0u);
}

// accept(2) failing with EMFILE leaves the connection queued and the listener readable:
// watched as before, the loop woke at once, every round, for as long as the table stayed
// full.
TEST(Acceptor, PausesInsteadOfSpinningWhileDescriptorsRunOutAndThenResumes) {
  EventLoop loop;
  auto listeners = ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(listeners.ok()) << listeners.error().ToString();
  auto port = LocalPort((*listeners)[0].get());
  ASSERT_TRUE(port.ok());
  int accepted = 0;
  Acceptor acceptor(loop, (*listeners)[0].get(), "test", 16, [&](UniqueFd) { ++accepted; });
  constexpr int kClients = 3;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < kClients; ++i) {
    auto c = ConnectTcp("127.0.0.1", *port, 2s);  // done by the kernel, queued
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    clients.push_back(std::move(*c));
  }

  DescriptorTableFull full;
  // One second of the loop, each round allowed to sleep up to 4 pauses: a loop at rest
  // wakes about once a pause; a spinning one thousands of times (bounded here).
  constexpr auto kWindow = 1s;
  int rounds = 0;
  for (auto end = Clock::now() + kWindow; Clock::now() < end && rounds < 10000; ++rounds) {
    ASSERT_TRUE(loop.RunOnce(4 * kAcceptPause).ok());
  }
  EXPECT_EQ(accepted, 0);
  EXPECT_GE(acceptor.pauses(), 1u);
  EXPECT_LE(rounds, 2 * (kWindow / kAcceptPause) + 2) << "the loop spun";
  EXPECT_LE(acceptor.pauses(), static_cast<uint64_t>(kWindow / kAcceptPause) + 2);

  full.Release();
  auto resumed_by = Clock::now() + 2 * kAcceptPause + 1s;
  while (accepted < kClients && Clock::now() < resumed_by) {
    ASSERT_TRUE(loop.RunOnce(50ms).ok());
  }
  EXPECT_EQ(accepted, kClients) << "accepting did not resume";
}

}  // namespace
}  // namespace tether::net
