#include "agent/lease.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "test_util.h"

namespace tether::agent {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using Clock = Lease::Clock;
using testing::TempDir;

const Clock::time_point kT0 = Clock::time_point{} + hours(1000);

TEST(Lease, DisabledLeaseRefusesExtensionsAndNeverFires) {
  Lease lease;
  EXPECT_FALSE(lease.enabled());
  Status s = lease.Extend(hours(1), kT0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().hint.find("--lease-command"), std::string::npos);
  EXPECT_FALSE(lease.TakeExpiry(kT0 + hours(10000)));
}

TEST(Lease, FiresOnceWhenItRunsOut) {
  Lease lease(hours(2), kT0);
  EXPECT_TRUE(lease.armed());
  EXPECT_EQ(lease.Remaining(kT0 + hours(1)), milliseconds(hours(1)));
  EXPECT_FALSE(lease.TakeExpiry(kT0 + hours(2) - milliseconds(1)));
  EXPECT_TRUE(lease.TakeExpiry(kT0 + hours(2)));
  EXPECT_FALSE(lease.armed());
  EXPECT_FALSE(lease.Remaining(kT0 + hours(2)).has_value());
  for (int i = 1; i <= 100; ++i) EXPECT_FALSE(lease.TakeExpiry(kT0 + hours(2 + i)));
  EXPECT_EQ(lease.expirations(), 1);
}

TEST(Lease, WithoutAnInitialLengthItWaitsForTheFirstExtension) {
  Lease lease(std::nullopt, kT0);
  EXPECT_TRUE(lease.enabled());
  EXPECT_FALSE(lease.armed());
  EXPECT_FALSE(lease.TakeExpiry(kT0 + hours(10000)));
  ASSERT_TRUE(lease.Extend(hours(1), kT0 + hours(5)).ok());
  EXPECT_FALSE(lease.TakeExpiry(kT0 + hours(5) + milliseconds(hours(1)) - milliseconds(1)));
  EXPECT_TRUE(lease.TakeExpiry(kT0 + hours(6)));
}

TEST(Lease, ExtensionsAddToWhatRemains) {
  Lease lease(hours(2), kT0);
  ASSERT_TRUE(lease.Extend(hours(3), kT0 + hours(1)).ok());
  EXPECT_EQ(lease.Remaining(kT0 + hours(1)), milliseconds(hours(4)));
  EXPECT_FALSE(lease.TakeExpiry(kT0 + hours(5) - milliseconds(1)));
  EXPECT_TRUE(lease.TakeExpiry(kT0 + hours(5)));
}

TEST(Lease, AnExtensionAfterExpiryStartsANewLeaseThatFiresAgain) {
  Lease lease(hours(1), kT0);
  ASSERT_TRUE(lease.TakeExpiry(kT0 + hours(1)));
  ASSERT_TRUE(lease.Extend(hours(1), kT0 + hours(3)).ok());
  EXPECT_EQ(lease.Remaining(kT0 + hours(3)), milliseconds(hours(1)));
  EXPECT_TRUE(lease.TakeExpiry(kT0 + hours(4)));
  EXPECT_EQ(lease.expirations(), 2);
}

TEST(Lease, RefusesToRunMoreThanAMonthAhead) {
  Lease lease(hours(700), kT0);
  Status s = lease.Extend(hours(21), kT0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("720 hours"), std::string::npos) << s.error().message;
  EXPECT_EQ(lease.Remaining(kT0), milliseconds(hours(700)));  // unchanged
  EXPECT_TRUE(lease.Extend(hours(20), kT0).ok());
  EXPECT_FALSE(lease.Extend(milliseconds(0), kT0).ok());
  EXPECT_FALSE(lease.Extend(milliseconds(-5), kT0).ok());
}

// A clock the test moves by hand.
struct FakeClock {
  std::atomic<Clock::rep> ticks{kT0.time_since_epoch().count()};
  Clock::time_point Now() const { return Clock::time_point(Clock::duration(ticks.load())); }
  void Advance(Clock::duration d) { ticks += d.count(); }
};

TEST(LeaseKeeper, RunsItsCommandOnceOnAFakeClock) {
  FakeClock clock;
  std::vector<std::string> spawned;
  std::vector<std::string> logs;
  LeaseConfig config{"touch /nonexistent/never", hours(2), milliseconds(1000)};
  LeaseKeeper keeper(
      config, [&](const std::string& line) { logs.push_back(line); }, [&] { return clock.Now(); },
      [&](const std::string& command) -> Result<pid_t> {
        spawned.push_back(command);
        return MakeError("spawn", "not in this test");
      });
  keeper.Poll();
  clock.Advance(hours(2) - milliseconds(1));
  keeper.Poll();
  EXPECT_TRUE(spawned.empty());
  clock.Advance(milliseconds(1));
  for (int i = 0; i < 50; ++i) {
    keeper.Poll();
    clock.Advance(hours(1));
  }
  ASSERT_EQ(spawned.size(), 1u);
  EXPECT_EQ(spawned[0], "touch /nonexistent/never");
  LeaseSnapshot s = keeper.Snapshot();
  EXPECT_EQ(s.expirations, 1);
  EXPECT_FALSE(s.armed);
  EXPECT_EQ(s.last_exit_code, 127);  // it could not start
}

TEST(LeaseKeeper, SnapshotsAndExtensionsFollowTheClock) {
  FakeClock clock;
  LeaseKeeper keeper(LeaseConfig{"true", std::nullopt, milliseconds(1000)}, {},
                     [&] { return clock.Now(); });
  LeaseSnapshot s = keeper.Snapshot();
  EXPECT_TRUE(s.enabled);
  EXPECT_FALSE(s.armed);
  EXPECT_FALSE(s.remaining);
  auto extended = keeper.Extend(hours(2));
  ASSERT_TRUE(extended.ok());
  EXPECT_TRUE(extended->armed);
  EXPECT_EQ(extended->remaining, milliseconds(hours(2)));
  ASSERT_TRUE(extended->expires_at.has_value());
  clock.Advance(hours(1));
  EXPECT_EQ(keeper.Snapshot().remaining, milliseconds(hours(1)));
  EXPECT_FALSE(keeper.Extend(hours(800)).ok());
}

TEST(LeaseKeeper, DisabledWithoutACommand) {
  LeaseKeeper keeper(LeaseConfig{}, {});
  EXPECT_FALSE(keeper.enabled());
  EXPECT_FALSE(keeper.Snapshot().enabled);
  EXPECT_FALSE(keeper.Extend(hours(1)).ok());
  keeper.Start();  // no thread for a disabled lease; nothing to stop
  keeper.Stop();
}

size_t CountLines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// The real thing: a short lease, the watcher thread, /bin/sh, a file the command appends
// to. Waits are bounded; the lease is 200 ms and the tick 10 ms.
TEST(LeaseKeeper, RunsTheRealCommandExactlyOnce) {
  TempDir dir;
  const std::string out = dir / "fired";
  std::vector<std::string> logs;
  std::mutex logs_mu;
  LeaseKeeper keeper(
      LeaseConfig{"echo fired >> '" + out + "'", milliseconds(200), milliseconds(10)},
      [&](const std::string& line) {
        std::lock_guard lock(logs_mu);
        logs.push_back(line);
      });
  keeper.Start();
  EXPECT_EQ(CountLines(out), 0u);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (CountLines(out) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(CountLines(out), 1u) << "the lease command did not run within 10 s";
  // The command was reaped and its status recorded.
  while (!keeper.Snapshot().last_exit_code && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(keeper.Snapshot().last_exit_code, 0);
  // Still once after more than another lease (200 ms) of ticks. What is checked is that
  // nothing happens, which only time can show; the watcher steps once per 10 ms meanwhile.
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(CountLines(out), 1u);
  EXPECT_EQ(keeper.Snapshot().expirations, 1);
  keeper.Stop();
  std::lock_guard lock(logs_mu);
  ASSERT_FALSE(logs.empty());
  EXPECT_NE(logs[0].find("lease ran out"), std::string::npos) << logs[0];
}

TEST(LeaseKeeper, StopsPromptlyWithALongTick) {
  LeaseKeeper keeper(LeaseConfig{"true", hours(1), std::chrono::seconds(60)}, {});
  keeper.Start();
  const auto start = std::chrono::steady_clock::now();
  keeper.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace tether::agent
