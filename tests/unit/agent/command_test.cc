#include "agent/command.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

namespace tether::agent {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr size_t kCap = 1 << 20;

TEST(RunCommand, CapturesOutputAndExitStatus) {
  auto r = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, milliseconds(5000), kCap);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
}

TEST(RunCommand, AMissingProgramIsASpawnErrorWithEnoent) {
  auto r = RunCommand({"tether-no-such-program-here"}, milliseconds(1000), kCap);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().sys_errno, ENOENT);
}

TEST(RunCommand, KillsTheGroupAtTheTimeout) {
  const auto start = Clock::now();
  // The background sleep holds the pipe open too: only killing the group ends this.
  auto r = RunCommand({"sh", "-c", "sleep 30 & sleep 30"}, milliseconds(200), kCap);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + SIGKILL);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(RunCommand, DropsOutputBeyondTheCapButReadsToTheEnd) {
  auto r = RunCommand({"head", "-c", "300000", "/dev/zero"}, milliseconds(5000), 1000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.size(), 1000u);
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_FALSE(r->timed_out);
}

TEST(RunCommand, ChildrenGetACleanSignalMask) {
  // The agent blocks SIGTERM in every thread; a child that inherited that would shrug off
  // the TERM it sends itself and sleep on.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigset_t old;
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  auto r = RunCommand({"sh", "-c", "kill -TERM $$; sleep 5"}, milliseconds(3000), kCap);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 128 + SIGTERM);
}

TEST(RunCommand, ChildrenInheritNoDescriptorsBeyondStdio) {
  int leaky = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(leaky, 3);
  auto r = RunCommand(
      {"sh", "-c",
       "test -e /proc/self/fd/" + std::to_string(leaky) + " && echo leaked || echo clean"},
      milliseconds(5000), kCap);
  ::close(leaky);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "clean\n");
}

TEST(SpawnShell, StartsADetachedShellWhoseStatusCanBeReaped) {
  auto pid = SpawnShell("exit 7");
  ASSERT_TRUE(pid.ok()) << pid.error().ToString();
  std::optional<int> code;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!code && Clock::now() < deadline) {
    code = ReapChild(*pid);
    if (!code) std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(code, 7);
  EXPECT_EQ(ReapChild(*pid), -1);  // gone
}

TEST(SpawnShell, RunsInItsOwnSession) {
  auto pid = SpawnShell("sleep 5");
  ASSERT_TRUE(pid.ok());
  // posix_spawn returns after the child's exec, so its setsid has happened.
  EXPECT_EQ(::getsid(*pid), *pid);
  ::kill(*pid, SIGKILL);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!ReapChild(*pid) && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(5));
}

}  // namespace
}  // namespace tether::agent
