// Child processes: a bounded run that captures output (nvidia-smi, tmux), and a detached
// shell command (the lease command). Both use posix_spawn, which is safe in a process
// with threads, and give the child an empty signal mask and default dispositions: the
// agent blocks SIGTERM/SIGINT/SIGHUP for its signal thread and ignores SIGPIPE, and a
// child must not inherit either.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace tether::agent {

struct CommandOutput {
  int exit_code = 0;  // 128 + signal when killed by one, as a shell reports it
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs argv (argv[0] looked up in PATH) with stdin from /dev/null, in its own process
// group, and waits at most `timeout`; then the group is killed. Output beyond
// `max_output` bytes per stream is read and dropped. Spawn failures are errors with the
// errno kept (ENOENT: no such program); anything the program itself does is an output.
// A child that cannot even be reaped after SIGKILL (stuck in the kernel, as nvidia-smi
// can be with a wedged driver) is left behind and reaped by a later call.
Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout, size_t max_output);

// Starts `/bin/sh -c command` in a new session (so it outlives the agent and a signal
// to the agent's group), stdin from /dev/null, stdout and stderr to the agent's stderr.
// The caller reaps it with ReapChild.
Result<pid_t> SpawnShell(const std::string& command);

// Non-blocking waitpid: the shell-style exit code once `pid` has ended, nullopt while it
// runs, -1 when `pid` is not (or no longer) a child of ours.
std::optional<int> ReapChild(pid_t pid);

}  // namespace tether::agent
