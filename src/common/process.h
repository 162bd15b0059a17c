// Running a program of this machine (systemctl, SSH_ASKPASS, ssh -V, notify-send), always
// bounded: stdin from /dev/null (ours may carry the caller's data), the wait and what is
// read limited, the process ended by its pid and reaped whatever it does.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace tether {

struct ProcessOptions {
  // After this the process is killed (SIGKILL) and counts as timed out.
  std::chrono::milliseconds timeout{10000};
  // Its stdout is read (at most max_output bytes) unless it is left on ours.
  bool capture_stdout = true;
  // Its stderr goes with its stdout (read); else it is ours.
  bool stderr_with_stdout = false;
  size_t max_output = 64 * 1024;
};

struct ProcessResult {
  bool started = false;
  std::string start_error;  // why it could not start
  std::string out;          // what it wrote (see ProcessOptions)
  bool timed_out = false;
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it

  bool ok() const { return started && !timed_out && exit_code == 0; }
  // "could not be run: ...", "exited with 3", "was killed by signal 9", "gave no answer
  // in 10 s": for "PROGRAM " + Describe().
  std::string Describe() const;
};

// Runs `argv` (argv[0] searched in PATH when it has no slash) and waits for it, bounded.
ProcessResult RunProcess(const std::vector<std::string>& argv, const ProcessOptions& options);

// Starts `argv` (searched in PATH likewise) with stdin, stdout and stderr on /dev/null and
// returns at once; a thread of its own reaps it, killing it after `limit`. "" when it
// started, else why not.
std::string SpawnDetached(const std::vector<std::string>& argv, std::chrono::milliseconds limit);

// The path of the running executable ("" when the system cannot say).
std::string SelfExecutablePath();

// The tether-agent built with this tether: $TETHER_AGENT_BIN, else the one beside the
// running executable.
std::string AgentBinaryPath();

}  // namespace tether
