#include "common/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __APPLE__
#include <mach-o/dyld.h>
#endif

#include <cerrno>
#include <cstring>
#include <thread>

#include "common/unique_fd.h"

extern char** environ;

namespace tether {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kReapPoll = std::chrono::milliseconds(10);

// Starts argv with stdin on /dev/null, stdout on `out` (or /dev/null when `null_out`, or
// ours when -1), stderr on `err` likewise. The pid, or -1 with `error` set.
pid_t Spawn(const std::vector<std::string>& argv, int out, bool null_out, int err, bool null_err,
            std::string* error) {
  if (argv.empty()) {
    *error = "no program";
    return -1;
  }
  std::vector<std::string> copy = argv;
  std::vector<char*> args;
  for (std::string& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (null_out) {
    ::posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  } else if (out >= 0) {
    ::posix_spawn_file_actions_adddup2(&actions, out, 1);
  }
  if (null_err) {
    ::posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  } else if (err >= 0) {
    ::posix_spawn_file_actions_adddup2(&actions, err, 2);
  }
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    *error = std::strerror(rc);
    return -1;
  }
  return pid;
}

// Waits for `pid` until `deadline`, then kills it; its wait status, and whether it had to
// be killed.
int Reap(pid_t pid, Clock::time_point deadline, bool* killed) {
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return status;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(kReapPoll);
  }
  *killed = true;
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

std::string ProcessResult::Describe() const {
  if (!started) return "could not be run: " + start_error;
  if (timed_out) return "gave no answer in time";
  if (signal != 0) return "was killed by signal " + std::to_string(signal);
  return "exited with " + std::to_string(exit_code);
}

ProcessResult RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options) {
  ProcessResult result;
  UniqueFd read_end;
  UniqueFd write_end;
  if (options.capture_stdout || options.stderr_with_stdout) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      result.start_error = std::string("pipe: ") + std::strerror(errno);
      return result;
    }
    read_end.Reset(fds[0]);
    write_end.Reset(fds[1]);
  }
  const int out = options.capture_stdout ? write_end.get() : -1;
  const int err = options.stderr_with_stdout ? write_end.get() : -1;
  const auto deadline = Clock::now() + options.timeout;
  pid_t pid = Spawn(argv, out, false, err, false, &result.start_error);
  write_end.Reset();
  if (pid < 0) return result;
  result.started = true;

  while (read_end && result.out.size() < options.max_output) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{read_end.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    char buf[4096];
    const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.out.append(buf, static_cast<size_t>(n));
  }
  if (result.out.size() > options.max_output) result.out.resize(options.max_output);
  read_end.Reset();
  bool killed = false;
  const int status = Reap(pid, deadline, &killed);
  result.timed_out = killed;
  if (!killed && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (!killed && WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

std::string SpawnDetached(const std::vector<std::string>& argv, std::chrono::milliseconds limit) {
  std::string error;
  pid_t pid = Spawn(argv, -1, true, -1, true, &error);
  if (pid < 0) return error.empty() ? "could not start" : error;
  std::thread([pid, deadline = Clock::now() + limit] {
    bool killed = false;
    (void)Reap(pid, deadline, &killed);
  }).detach();
  return "";
}

std::string SelfExecutablePath() {
#ifdef __APPLE__
  char path[4096] = {0};
  uint32_t size = sizeof path;
  if (::_NSGetExecutablePath(path, &size) == 0) return path;
  return "";
#else
  char self[4096] = {0};
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  return n > 0 ? std::string(self, static_cast<size_t>(n)) : "";
#endif
}

std::string AgentBinaryPath() {
  if (const char* p = std::getenv("TETHER_AGENT_BIN"); p != nullptr && *p != '\0') return p;
  std::string dir = SelfExecutablePath();
  dir = dir.substr(0, dir.rfind('/') == std::string::npos ? 0 : dir.rfind('/'));
  return dir + "/tether-agent";
}

}  // namespace tether
