#include "net/event_loop.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace tether::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe MakePipe() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void WriteByte(const Pipe& p) { ASSERT_EQ(::write(p.write.get(), "x", 1), 1); }

// Runs the loop in short rounds until `done` or 2 s. False on timeout.
bool RunUntil(EventLoop& loop, const std::function<bool()>& done) {
  const auto deadline = Clock::now() + 2s;
  for (int round = 0; round < 1000 && Clock::now() < deadline; ++round) {
    Status s = loop.RunOnce(20ms);
    EXPECT_TRUE(s.ok()) << s.error().ToString();
    if (done()) return true;
  }
  return false;
}

TEST(EventLoop, FiresTimersInDeadlineOrder) {
  EventLoop loop;
  std::vector<std::string> fired;
  loop.AddTimer(60ms, [&] { fired.push_back("60ms"); });
  loop.AddTimer(20ms, [&] { fired.push_back("20ms"); });
  loop.AddTimer(40ms, [&] { fired.push_back("40ms"); });
  loop.AddTimer(0ms, [&] { fired.push_back("0ms"); });

  ASSERT_TRUE(RunUntil(loop, [&] { return fired.size() == 4; }));

  EXPECT_EQ(fired, (std::vector<std::string>{"0ms", "20ms", "40ms", "60ms"}));
}

TEST(EventLoop, DoesNotFireATimerBeforeItsDeadline) {
  EventLoop loop;
  bool fired = false;
  const auto start = Clock::now();
  loop.AddTimer(50ms, [&] { fired = true; });

  ASSERT_TRUE(loop.RunOnce(0ms).ok());
  EXPECT_FALSE(fired);
  ASSERT_TRUE(RunUntil(loop, [&] { return fired; }));
  EXPECT_GE(Clock::now() - start, 50ms);
}

TEST(EventLoop, NeverFiresACancelledTimer) {
  EventLoop loop;
  bool cancelled_fired = false;
  bool kept_fired = false;
  const EventLoop::TimerId id = loop.AddTimer(10ms, [&] { cancelled_fired = true; });
  loop.AddTimer(40ms, [&] { kept_fired = true; });

  loop.CancelTimer(id);
  loop.CancelTimer(id);    // twice is harmless
  loop.CancelTimer(9999);  // as is an id never handed out

  ASSERT_TRUE(RunUntil(loop, [&] { return kept_fired; }));
  EXPECT_FALSE(cancelled_fired);
}

TEST(EventLoop, ACallbackCanCancelATimerDueInTheSameRound) {
  EventLoop loop;
  bool second_fired = false;
  EventLoop::TimerId second = 0;
  loop.AddTimer(1ms, [&] { loop.CancelTimer(second); });
  second = loop.AddTimer(2ms, [&] { second_fired = true; });
  std::this_thread::sleep_for(10ms);  // both are due now

  ASSERT_TRUE(loop.RunOnce(0ms).ok());
  ASSERT_TRUE(loop.RunOnce(0ms).ok());

  EXPECT_FALSE(second_fired);
}

TEST(EventLoop, FiresATimerAddedByACallbackInALaterRound) {
  EventLoop loop;
  std::vector<std::string> fired;
  loop.AddTimer(0ms, [&] {
    fired.push_back("first");
    loop.AddTimer(0ms, [&] { fired.push_back("added"); });
  });

  ASSERT_TRUE(loop.RunOnce(0ms).ok());
  EXPECT_EQ(fired, (std::vector<std::string>{"first"}));

  ASSERT_TRUE(loop.RunOnce(0ms).ok());
  EXPECT_EQ(fired, (std::vector<std::string>{"first", "added"}));
}

TEST(EventLoop, ReportsAPipeWithDataAsReadable) {
  EventLoop loop;
  Pipe p = MakePipe();
  std::vector<unsigned> calls;
  loop.Watch(p.read.get(), kReadable, [&](unsigned events) { calls.push_back(events); });

  ASSERT_TRUE(loop.RunOnce(20ms).ok());
  EXPECT_TRUE(calls.empty()) << "called without data";

  WriteByte(p);
  ASSERT_TRUE(loop.RunOnce(1s).ok());
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], unsigned{kReadable});
}

TEST(EventLoop, ReportsAnEmptyPipeAsWritable) {
  EventLoop loop;
  Pipe p = MakePipe();
  std::vector<unsigned> calls;
  loop.Watch(p.write.get(), kWritable, [&](unsigned events) { calls.push_back(events); });

  ASSERT_TRUE(loop.RunOnce(1s).ok());
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], unsigned{kWritable});
}

TEST(EventLoop, ReportsAClosedWriterAsHangup) {
  EventLoop loop;
  Pipe p = MakePipe();
  std::vector<unsigned> calls;
  loop.Watch(p.read.get(), kReadable, [&](unsigned events) { calls.push_back(events); });
  p.write.Reset();

  ASSERT_TRUE(loop.RunOnce(1s).ok());
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0] & kHangup) << calls[0];
}

TEST(EventLoop, DoesNotCallAHandlerUnwatchedEarlierInTheSameRound) {
  EventLoop loop;
  Pipe a = MakePipe();
  Pipe b = MakePipe();
  WriteByte(a);
  WriteByte(b);
  int a_calls = 0;
  int b_calls = 0;
  // Whichever runs first unwatches the other, whose data is also ready in this round.
  loop.Watch(a.read.get(), kReadable, [&](unsigned) {
    ++a_calls;
    loop.Unwatch(b.read.get());
  });
  loop.Watch(b.read.get(), kReadable, [&](unsigned) {
    ++b_calls;
    loop.Unwatch(a.read.get());
  });

  ASSERT_TRUE(loop.RunOnce(1s).ok());
  EXPECT_EQ(a_calls + b_calls, 1) << "a: " << a_calls << ", b: " << b_calls;

  // And it stays unwatched: only the survivor is called for its unread byte.
  const bool a_survived = a_calls == 1;
  ASSERT_TRUE(loop.RunOnce(20ms).ok());
  ASSERT_TRUE(loop.RunOnce(20ms).ok());
  if (a_survived) {
    EXPECT_EQ(b_calls, 0);
    EXPECT_EQ(a_calls, 3);
  } else {
    EXPECT_EQ(a_calls, 0);
    EXPECT_EQ(b_calls, 3);
  }
}

// The same for a watcher replaced in the round (as when a handler closes a descriptor
// and the next socket it opens gets the same number): the new handler waits for a
// readiness report of its own.
TEST(EventLoop, DoesNotCallAHandlerReplacedEarlierInTheSameRound) {
  EventLoop loop;
  Pipe a = MakePipe();
  Pipe b = MakePipe();
  WriteByte(a);
  WriteByte(b);
  std::vector<std::string> calls;
  auto replace = [&](int fd, const char* name) {
    loop.Unwatch(fd);
    loop.Watch(fd, kReadable, [&calls, name](unsigned) { calls.push_back(name); });
  };
  loop.Watch(a.read.get(), kReadable, [&](unsigned) {
    calls.push_back("a");
    replace(b.read.get(), "new b");
  });
  loop.Watch(b.read.get(), kReadable, [&](unsigned) {
    calls.push_back("b");
    replace(a.read.get(), "new a");
  });

  ASSERT_TRUE(loop.RunOnce(1s).ok());

  EXPECT_THAT(calls, testing::AnyOf(testing::ElementsAre("a"), testing::ElementsAre("b")));
}

TEST(EventLoop, AHandlerMayUnwatchItself) {
  EventLoop loop;
  Pipe p = MakePipe();
  WriteByte(p);
  int calls = 0;
  loop.Watch(p.read.get(), kReadable, [&](unsigned) {
    ++calls;
    loop.Unwatch(p.read.get());
  });

  ASSERT_TRUE(loop.RunOnce(1s).ok());
  ASSERT_TRUE(loop.RunOnce(20ms).ok());

  EXPECT_EQ(calls, 1);
}

TEST(EventLoop, StopsReportingAfterSetInterestNone) {
  EventLoop loop;
  Pipe p = MakePipe();
  WriteByte(p);
  int calls = 0;
  loop.Watch(p.read.get(), kReadable, [&](unsigned) { ++calls; });

  ASSERT_TRUE(loop.RunOnce(1s).ok());
  ASSERT_EQ(calls, 1);

  loop.SetInterest(p.read.get(), kNone);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(loop.RunOnce(10ms).ok());
  EXPECT_EQ(calls, 1);

  loop.SetInterest(p.read.get(), kReadable);
  ASSERT_TRUE(loop.RunOnce(1s).ok());
  EXPECT_EQ(calls, 2);
}

// poll(2) reports POLLHUP whatever was asked: stdin at EOF, watched for nothing, once
// woke the daemon every round (100% of a core for as long as the command ran).
TEST(EventLoop, DoesNotWakeForAHungUpDescriptorThatWantsNothing) {
  EventLoop loop;
  Pipe p = MakePipe();
  int calls = 0;
  loop.Watch(p.read.get(), kNone, [&](unsigned) { ++calls; });
  p.write.Reset();

  const auto start = Clock::now();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(loop.RunOnce(20ms).ok());

  EXPECT_EQ(calls, 0);
  EXPECT_GE(Clock::now() - start, 90ms) << "RunOnce returned early: something woke poll";
}

TEST(EventLoop, ReportsTheHangupOnceInterestComesBack) {
  EventLoop loop;
  Pipe p = MakePipe();
  std::vector<unsigned> calls;
  loop.Watch(p.read.get(), kNone, [&](unsigned events) { calls.push_back(events); });
  p.write.Reset();
  ASSERT_TRUE(loop.RunOnce(10ms).ok());
  ASSERT_TRUE(calls.empty());

  loop.SetInterest(p.read.get(), kReadable);
  ASSERT_TRUE(loop.RunOnce(1s).ok());

  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0] & kHangup) << calls[0];
}

TEST(EventLoop, RunsIterationHooksAfterEveryRoundInOrder) {
  EventLoop loop;
  Pipe p = MakePipe();
  WriteByte(p);
  std::vector<std::string> log;
  loop.Watch(p.read.get(), kReadable, [&](unsigned) {
    log.push_back("fd");
    loop.Unwatch(p.read.get());
  });
  loop.AddTimer(0ms, [&] { log.push_back("timer"); });
  loop.AddIterationHook([&] { log.push_back("hook 1"); });
  loop.AddIterationHook([&] { log.push_back("hook 2"); });

  ASSERT_TRUE(loop.RunOnce(1s).ok());
  ASSERT_EQ(log.size(), 4u) << testing::PrintToString(log);
  EXPECT_THAT((std::vector<std::string>{log[0], log[1]}),
              testing::UnorderedElementsAre("fd", "timer"));
  EXPECT_EQ(log[2], "hook 1");
  EXPECT_EQ(log[3], "hook 2");

  // A round in which nothing happens runs them too.
  log.clear();
  ASSERT_TRUE(loop.RunOnce(0ms).ok());
  EXPECT_EQ(log, (std::vector<std::string>{"hook 1", "hook 2"}));
}

// Puts the original dispositions of the signals back.
class SignalGuard {
 public:
  explicit SignalGuard(std::vector<int> signals) : signals_(std::move(signals)) {
    for (int s : signals_) {
      struct sigaction old {};
      ::sigaction(s, nullptr, &old);
      saved_.push_back(old);
    }
  }
  ~SignalGuard() {
    for (size_t i = 0; i < signals_.size(); ++i) ::sigaction(signals_[i], &saved_[i], nullptr);
  }

 private:
  std::vector<int> signals_;
  std::vector<struct sigaction> saved_;
};

TEST(EventLoop, DeliversSignalsThroughTheLoop) {
  SignalGuard guard({SIGUSR1, SIGUSR2});
  std::vector<int> got;
  {
    EventLoop loop;
    Status s = loop.HandleSignals({SIGUSR1, SIGUSR2}, [&](int signo) { got.push_back(signo); });
    ASSERT_TRUE(s.ok()) << s.error().ToString();

    ASSERT_EQ(::raise(SIGUSR1), 0);
    ASSERT_EQ(::raise(SIGUSR2), 0);
    EXPECT_TRUE(got.empty()) << "called from the signal handler, not from the loop";

    ASSERT_TRUE(RunUntil(loop, [&] { return got.size() >= 2; }));
  }
  EXPECT_EQ(got, (std::vector<int>{SIGUSR1, SIGUSR2}));
}

TEST(EventLoop, StopEndsRun) {
  // Run() on a helper thread so that a Stop() that does not work fails the test instead
  // of hanging it. The thread shares ownership of what it uses, so it can be abandoned.
  struct Shared {
    EventLoop loop;
    std::atomic<bool> timer_fired{false};
    std::promise<Status> result;
  };
  auto shared = std::make_shared<Shared>();
  shared->loop.AddTimer(20ms, [raw = shared.get()] {
    raw->timer_fired = true;
    raw->loop.Stop();
  });
  std::future<Status> done = shared->result.get_future();
  std::thread runner([shared] { shared->result.set_value(shared->loop.Run()); });

  if (done.wait_for(3s) != std::future_status::ready) {
    runner.detach();
    FAIL() << "Run() did not return after Stop()";
  }
  runner.join();
  Status s = done.get();
  EXPECT_TRUE(s.ok()) << s.error().ToString();
  EXPECT_TRUE(shared->timer_fired);
}

}  // namespace
}  // namespace tether::net
