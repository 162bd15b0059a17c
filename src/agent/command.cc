#include "agent/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <thread>

#include "common/unique_fd.h"

extern char** environ;

namespace tether::agent {
namespace {

using Clock = std::chrono::steady_clock;

// How long to wait for a SIGKILLed child to be reapable before leaving it behind.
constexpr std::chrono::milliseconds kReapGrace{1000};
constexpr std::chrono::milliseconds kReapPoll{10};
constexpr size_t kReadChunk = 16 * 1024;

// Children that outlived kReapGrace; reaped by later calls so they do not stay zombies.
std::mutex g_abandoned_mu;
std::vector<pid_t> g_abandoned;

void ReapAbandoned() {
  std::lock_guard lock(g_abandoned_mu);
  std::erase_if(g_abandoned, [](pid_t pid) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    return r == pid || (r < 0 && errno == ECHILD);
  });
}

int ShellExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// posix_spawn attributes and file actions, destroyed on every path.
class SpawnSetup {
 public:
  SpawnSetup() {
    ::posix_spawnattr_init(&attr_);
    ::posix_spawn_file_actions_init(&actions_);
  }
  ~SpawnSetup() {
    ::posix_spawnattr_destroy(&attr_);
    ::posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // A clean signal state and, with `new_session`, a session of its own (else a process
  // group of its own, so a timeout can kill what the program started too).
  void CleanSignals(bool new_session) {
    sigset_t empty;
    sigemptyset(&empty);
    ::posix_spawnattr_setsigmask(&attr_, &empty);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) {
      sigaddset(&defaults, sig);
    }
    ::posix_spawnattr_setsigdefault(&attr_, &defaults);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
#ifdef POSIX_SPAWN_SETSID
    if (new_session) {
      flags |= POSIX_SPAWN_SETSID;
    } else {
      flags |= POSIX_SPAWN_SETPGROUP;
    }
#else
    (void)new_session;
    flags |= POSIX_SPAWN_SETPGROUP;
#endif
    ::posix_spawnattr_setpgroup(&attr_, 0);
    ::posix_spawnattr_setflags(&attr_, flags);
  }

  // Descriptors the agent holds (the listening socket above all) must not leak into a
  // child: a detached lease command would otherwise keep the port bound after we exit.
  void CloseOthers() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    ::posix_spawn_file_actions_addclosefrom_np(&actions_, 3);
#endif
  }

  posix_spawnattr_t* attr() { return &attr_; }
  posix_spawn_file_actions_t* actions() { return &actions_; }

 private:
  posix_spawnattr_t attr_;
  posix_spawn_file_actions_t actions_;
};

Result<pid_t> Spawn(SpawnSetup& setup, const std::vector<std::string>& argv, bool search_path) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = search_path
               ? ::posix_spawnp(&pid, args[0], setup.actions(), setup.attr(), args.data(), environ)
               : ::posix_spawn(&pid, args[0], setup.actions(), setup.attr(), args.data(), environ);
  if (rc != 0) return ErrnoError("spawn", "cannot run " + argv[0], rc);
  return pid;
}

// Waits for `pid` until `deadline`; nullopt if it is still running then.
std::optional<int> WaitUntil(pid_t pid, Clock::time_point deadline) {
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return ShellExitCode(status);
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kReapPoll);
  }
}

}  // namespace

Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout, size_t max_output) {
  if (argv.empty()) return MakeError("spawn", "empty command");
  ReapAbandoned();

  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError("spawn", "pipe", errno);
  UniqueFd out_r(out_pipe[0]);
  UniqueFd out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoError("spawn", "pipe", errno);
  UniqueFd err_r(err_pipe[0]);
  UniqueFd err_w(err_pipe[1]);

  SpawnSetup setup;
  setup.CleanSignals(/*new_session=*/false);
  ::posix_spawn_file_actions_addopen(setup.actions(), 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(setup.actions(), out_w.get(), 1);
  ::posix_spawn_file_actions_adddup2(setup.actions(), err_w.get(), 2);
  setup.CloseOthers();
  auto pid = Spawn(setup, argv, /*search_path=*/true);
  if (!pid) return pid.take_error();
  out_w.Reset();
  err_w.Reset();

  const Clock::time_point deadline = Clock::now() + timeout;
  CommandOutput result;
  UniqueFd* fds[2] = {&out_r, &err_r};
  std::string* sinks[2] = {&result.out, &result.err};
  char buf[kReadChunk];
  while (out_r.valid() || err_r.valid()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    pollfd pfds[2];
    nfds_t n = 0;
    int which[2];
    for (int i = 0; i < 2; ++i) {
      if (!fds[i]->valid()) continue;
      pfds[n] = pollfd{fds[i]->get(), POLLIN, 0};
      which[n++] = i;
    }
    int ready = ::poll(pfds, n, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) break;
    for (nfds_t k = 0; k < n && ready > 0; ++k) {
      if (pfds[k].revents == 0) continue;
      int i = which[k];
      ssize_t got = ::read(fds[i]->get(), buf, sizeof buf);
      if (got > 0) {
        size_t room = max_output > sinks[i]->size() ? max_output - sinks[i]->size() : 0;
        sinks[i]->append(buf, std::min(room, static_cast<size_t>(got)));
      } else if (got == 0 || errno != EINTR) {
        fds[i]->Reset();
      }
    }
  }

  std::optional<int> code;
  if (!result.timed_out) code = WaitUntil(*pid, deadline);
  if (!code) {
    result.timed_out = true;
    ::kill(-*pid, SIGKILL);
    code = WaitUntil(*pid, Clock::now() + kReapGrace);
    if (!code) {
      std::lock_guard lock(g_abandoned_mu);
      g_abandoned.push_back(*pid);
      code = 128 + SIGKILL;
    }
  }
  result.exit_code = *code;
  return result;
}

Result<pid_t> SpawnShell(const std::string& command) {
  SpawnSetup setup;
  setup.CleanSignals(/*new_session=*/true);
  ::posix_spawn_file_actions_addopen(setup.actions(), 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(setup.actions(), 2, 1);
  setup.CloseOthers();
  return Spawn(setup, {"/bin/sh", "-c", command}, /*search_path=*/false);
}

std::optional<int> ReapChild(pid_t pid) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) return ShellExitCode(status);
  if (r < 0 && errno == ECHILD) return -1;
  return std::nullopt;
}

}  // namespace tether::agent
