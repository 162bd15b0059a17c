// End-to-end soak: load like a coding agent's. Thousands of short commands, 50 at once,
// through `tether exec` and through stock ssh on HOST.mux, with stdin closed, at EOF,
// piped, or 100 KB that must come back byte for byte; exit codes 0-6 and commands a signal
// ends. Every command must give the right output and status, and afterwards the daemon
// must hold no more descriptors than before and little more memory.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The issue's figures: at least 2000 commands, 50 at a time. TETHER_SOAK_COMMANDS sets
// another count (a quick check while changing the daemon).
constexpr int kDefaultCommands = 2000;
constexpr int kConcurrency = 50;
// Two waves before the baseline: the extra connections that 50 sessions at once need
// (sshd's MaxSessions is 10 a connection) open then, and stay open while they are used.
constexpr int kWarmupCommands = 2 * kConcurrency;
// What is piped in and must come back byte for byte.
constexpr size_t kBigInputBytes = 100 * 1024;
// A command that takes longer than this is stuck: fail it rather than hang the soak. The
// server's shell rc can hold a command for a while on its own: on this machine root's
// ~/.bashrc runs pyenv init, whose rehash waits up to 60 s (PYENV_REHASH_TIMEOUT) for a
// lock that 50 shells starting at once contend for (one command of 500 measured over 60 s).
// Past 60 s and a margin, the wait is ours.
constexpr milliseconds kCommandTimeout = seconds(120);
// Commands still waiting to start after this fail unrun. Most of a command's cost is the
// server's: sshd's session and the account's shell rc (on this machine root's ~/.bashrc
// runs pyenv init, ~115 ms a command), so 2000 on two cores take 3-4 minutes. With the
// last command's timeout and the settle wait it stays inside the soak's ctest timeout.
constexpr milliseconds kSoakDeadline = seconds(420);
// Descriptors of finished sessions are closed within a loop turn or two; what is still
// open after this has leaked.
constexpr milliseconds kSettle = seconds(10);
// RSS may grow by allocator slack, never by something kept per command.
constexpr uint64_t kMaxRssGrowthBytes = 16u << 20;
// Failures described in full in the report; the rest are only counted.
constexpr size_t kFailuresShown = 10;

int SoakCommands() {
  const char* env = std::getenv("TETHER_SOAK_COMMANDS");
  int n = env != nullptr ? std::atoi(env) : 0;
  return n > 0 ? n : kDefaultCommands;
}

// --- What /proc says about the daemon; every read failure is an error, never a zero.

struct DaemonSample {
  size_t descriptors = 0;
  uint64_t rss_bytes = 0;
  double cpu_s = 0;
};

Result<DaemonSample> Sample(pid_t pid) {
  auto fds = OpenDescriptorCount(pid);
  if (!fds.ok()) return fds.take_error();
  auto rss = ProcessMemoryBytes(pid, "VmRSS");
  if (!rss.ok()) return rss.take_error();
  auto cpu = ProcessCpuSeconds(pid);
  if (!cpu.ok()) return cpu.take_error();
  return DaemonSample{*fds, *rss, *cpu};
}

// --- The commands.

// One command of the mix, and what it must give.
struct Command {
  std::string kind;
  std::vector<std::string> argv;
  Env env;
  std::string input;  // empty: stdin is /dev/null
  std::string want_out;
  int want_exit = 0;
};

class SoakSlowTest : public TetherTest {
 protected:
  std::vector<std::string> TetherExec(const std::string& command) {
    return {TetherBinary(), "-F", sshd_.config_path(), "exec", "testhost", "--", command};
  }
  std::vector<std::string> MuxSsh(const std::string& command) {
    return {"ssh",
            "-F",
            sshd_.config_path(),
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=" + state_.File("testhost.mux"),
            "testhost",
            command};
  }
  // `argv` run with its stdin descriptor closed, not /dev/null: the first descriptor the
  // program opens then becomes 0.
  static std::vector<std::string> WithStdinClosed(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"/bin/sh", "-c", "exec 0<&- \"$@\"", "sh"});
    return argv;
  }

  // The i-th command of the soak: the mix cycles, and each kind varies with i.
  Command Make(int i) {
    const std::string n = std::to_string(i);
    const int code = i % 7;  // exit codes 0-6
    // A signal ends the shell: TERM and KILL in turn.
    const int signo = (i / 12) % 2 == 0 ? 15 : 9;
    const Env state = {{"TETHER_STATE_DIR", state_.path()}};
    Command c;
    switch (i % 12) {
      case 0:
        c = {"exec stdin /dev/null", TetherExec("echo out-" + n), state, "", "out-" + n + "\n", 0};
        break;
      case 1:
        c = {"exec stdin closed",
             WithStdinClosed(TetherExec("echo closed-" + n)),
             state,
             "",
             "closed-" + n + "\n",
             0};
        break;
      case 2:
        c = {"exec small pipe",   TetherExec("tr a-z A-Z"), state,
             "small-" + n + "\n", "SMALL-" + n + "\n",      0};
        break;
      case 3:
        c = {"exec 100 KB echoed", TetherExec("cat"), state, big_input_, big_input_, 0};
        break;
      case 4:
        c = {"exec exit code",
             TetherExec("echo c" + n + "; exit " + std::to_string(code)),
             state,
             "",
             "c" + n + "\n",
             code};
        break;
      case 5:
        c = {"exec signal",  TetherExec("echo s" + n + "; kill -" + std::to_string(signo) + " $$"),
             state,          "",
             "s" + n + "\n", 128 + signo};
        break;
      case 6:
        c = {"ssh stdin /dev/null", MuxSsh("echo mux-" + n), {}, "", "mux-" + n + "\n", 0};
        break;
      case 7:
        c = {"ssh stdin closed",
             WithStdinClosed(MuxSsh("echo mux-closed-" + n)),
             {},
             "",
             "mux-closed-" + n + "\n",
             0};
        break;
      case 8:
        c = {"ssh small pipe", MuxSsh("tr a-z A-Z"), {}, "pipe-" + n + "\n", "PIPE-" + n + "\n", 0};
        break;
      case 9:
        c = {"ssh 100 KB echoed", MuxSsh("cat"), {}, big_input_, big_input_, 0};
        break;
      case 10:
        c = {"ssh exit code",
             MuxSsh("echo m" + n + "; exit " + std::to_string(code)),
             {},
             "",
             "m" + n + "\n",
             code};
        break;
      default:
        // Stock OpenSSH as master sends no exit message for a signal and its mux client
        // exits 255; tether's mux server sends 128+n (what a shell reports), and ssh
        // exits with what the master sent.
        c = {"ssh signal",
             MuxSsh("echo ms" + n + "; kill -" + std::to_string(signo) + " $$"),
             {},
             "",
             "ms" + n + "\n",
             128 + signo};
        break;
    }
    return c;
  }

  // Runs commands [first, first + count) kConcurrency at a time; returns the failures'
  // descriptions (all of them are counted in `failed`).
  std::vector<std::string> RunMix(int first, int count, int& failed, Clock::time_point deadline) {
    std::atomic<int> next{first};
    std::atomic<int> failures{0};
    std::mutex mu;
    std::vector<std::string> shown;
    auto worker = [&] {
      for (int i; (i = next.fetch_add(1)) < first + count;) {
        if (Clock::now() > deadline) {
          failures.fetch_add(1);
          continue;  // counted, not run: the soak is over its time
        }
        Command c = Make(i);
        CommandResult r = RunCommand(c.argv, c.env, kCommandTimeout, c.input);
        if (r.exit_code == c.want_exit && !r.timed_out && r.out == c.want_out) continue;
        failures.fetch_add(1);
        std::lock_guard<std::mutex> lock(mu);
        if (shown.size() < kFailuresShown) {
          std::string out = r.out.size() > 200 ? r.out.substr(0, 200) + "..." : r.out;
          shown.push_back("#" + std::to_string(i) + " " + c.kind + ": want exit " +
                          std::to_string(c.want_exit) + ", got " + std::to_string(r.exit_code) +
                          (r.timed_out ? " (timed out)" : "") + "; stdout " +
                          std::to_string(r.out.size()) + " bytes" +
                          (r.out == c.want_out ? " (right)" : " (wrong): " + out) +
                          "; stderr: " + r.err.substr(0, 300));
        }
      }
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kConcurrency; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    failed = failures.load();
    return shown;
  }

  std::string big_input_ = PatternBytes(15, kBigInputBytes);
};

TEST_F(SoakSlowTest, TwoThousandMixedCommandsFiftyAtOnceLeaveTheDaemonAsTheyFoundIt) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  auto status = nlohmann::json::parse(Tether({"status", "--json"}).out, nullptr, false);
  ASSERT_TRUE(status.is_object() && status["hosts"].size() == 1) << status.dump();
  const pid_t pid = status["hosts"][0].value("pid", 0);
  ASSERT_GT(pid, 0);
  auto at_up = Sample(pid);
  ASSERT_TRUE(at_up.ok()) << at_up.error().ToString();

  const auto deadline = Clock::now() + kSoakDeadline;
  int failed = 0;
  auto shown = RunMix(0, kWarmupCommands, failed, deadline);
  ASSERT_EQ(failed, 0) << "warm-up: " << shown.front();
  auto before = Sample(pid);
  ASSERT_TRUE(before.ok()) << before.error().ToString();
  long before_connections = -1;
  {
    auto s = nlohmann::json::parse(Tether({"status", "--json"}).out, nullptr, false);
    ASSERT_TRUE(s.is_object() && s["hosts"][0]["sessions"]["connections"].is_number()) << s.dump();
    before_connections = s["hosts"][0]["sessions"]["connections"].get<long>();
  }

  const int commands = SoakCommands();
  const auto t0 = Clock::now();
  shown = RunMix(kWarmupCommands, commands, failed, deadline);
  const double wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  for (const auto& f : shown) ADD_FAILURE() << f;
  EXPECT_EQ(failed, 0) << failed << " of " << commands << " commands went wrong";

  // Descriptors: back where they were once the last sessions are torn down, give or take
  // the connections opened past MaxSessions (one socket each), which close only after a
  // minute unused.
  auto connections = [&]() -> long {
    auto s = nlohmann::json::parse(Tether({"status", "--json"}).out, nullptr, false);
    if (!s.is_object() || !s["hosts"][0]["sessions"]["connections"].is_number()) return -1;
    return s["hosts"][0]["sessions"]["connections"].get<long>();
  };
  const long connections_before = before_connections;
  long connections_after = -1;
  long allowed = -1;
  size_t descriptors = 0;
  Status read = Status::Ok();
  WaitFor(
      [&] {
        connections_after = connections();
        auto fds = OpenDescriptorCount(pid);
        if (!fds.ok()) {
          read = fds.take_error();
          return true;
        }
        descriptors = *fds;
        allowed = static_cast<long>(before->descriptors) + connections_after - connections_before;
        return connections_after > 0 && static_cast<long>(descriptors) <= allowed;
      },
      kSettle, milliseconds(100));
  ASSERT_TRUE(read.ok()) << read.error().ToString();
  ASSERT_GT(connections_after, 0) << "status --json has no sessions.connections";
  auto after = Sample(pid);
  ASSERT_TRUE(after.ok()) << after.error().ToString();

  const double cpu_s = after->cpu_s - before->cpu_s;
  std::fprintf(stderr,
               "soak: %d commands, %d at once, %.1f s wall (%.1f commands/s); daemon CPU %.2f s "
               "= %.2f ms a command\n"
               "soak: daemon descriptors %zu at up, %zu before, %zu after (connections %ld "
               "before, %ld after); RSS %.1f MiB at up, "
               "%.1f before, %.1f after\n",
               commands, kConcurrency, wall_s, commands / wall_s, cpu_s, 1000.0 * cpu_s / commands,
               at_up->descriptors, before->descriptors, descriptors, before_connections,
               connections_after, static_cast<double>(at_up->rss_bytes) / (1 << 20),
               static_cast<double>(before->rss_bytes) / (1 << 20),
               static_cast<double>(after->rss_bytes) / (1 << 20));
  EXPECT_LE(static_cast<long>(descriptors), allowed) << "the daemon leaked descriptors";
  EXPECT_LT(after->rss_bytes, at_up->rss_bytes + kMaxRssGrowthBytes)
      << "RSS grew from " << at_up->rss_bytes << " to " << after->rss_bytes << " bytes";
  EXPECT_TRUE(ProcessAlive(pid));
  status = nlohmann::json::parse(Tether({"status", "--json"}).out, nullptr, false);
  ASSERT_TRUE(status.is_object()) << status.dump();
  EXPECT_EQ(status["hosts"][0].value("reconnects", -1), 0) << "load is not an outage";
}

}  // namespace
}  // namespace tether::testing
