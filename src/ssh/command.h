// One command on a connected, blocking session (before SetNonBlocking: the probe at login,
// or a connection of doctor's own), run to its end or to a bound: stdin is given whole,
// stdout and stderr are collected up to a size, and the whole is bounded in time, whatever
// the server does.
//
// Under it is a seam (CommandChannel): RunCommand(Session&, ...) drives a session channel,
// tests drive a scripted one.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "common/result.h"

namespace tether::ssh {

class Session;

struct CommandLimits {
  std::chrono::milliseconds timeout{20000};  // from the exec on, to the exit status
  size_t max_output = 1u << 20;              // of stdout, and of stderr; beyond it we leave
};

struct CommandResult {
  int exit_status = -1;     // -1: none came (a signal, a bound, or the channel closed first)
  std::string exit_signal;  // the signal that ended it ("TERM"), or ""
  std::string out;
  std::string err;
  bool timed_out = false;  // the time bound ended it: what came so far is kept
  bool truncated = false;  // a stream passed max_output: it was cut there, and we left
};

// What RunCommand needs of a channel. Calls come from one thread, in the order below:
// Start, SendInput, then Read and Wait until the command is over or a bound is reached.
class CommandChannel {
 public:
  virtual ~CommandChannel() = default;
  // Opens a session channel and asks the server to run `command`.
  virtual Status Start(const std::string& command) = 0;
  // Writes all of `input` to the command's stdin, then EOF.
  virtual Status SendInput(const std::string& input) = 0;
  // Copies up to `cap` bytes that arrived on stdout (or stderr) without waiting: the count,
  // 0 when nothing is there now. Sets *ended once the stream is over (EOF, close, broken).
  virtual size_t Read(bool is_stderr, char* buf, size_t cap, bool* ended) = 0;
  // Waits at most `wait` for the server to send something, and takes it in.
  virtual void Wait(std::chrono::milliseconds wait) = 0;
  // Whether the channel is closed: nothing more will come.
  virtual bool Closed() const = 0;
  virtual int exit_status() const = 0;          // -1 until the server sends one
  virtual std::string exit_signal() const = 0;  // "" until the server sends one
};

// Runs `command` with `input` on its stdin. An Error (step "remote command") when the
// channel cannot be opened or the server refuses the command; a bound reached is not an
// error (CommandResult says which).
Result<CommandResult> RunCommand(CommandChannel& channel, const std::string& command,
                                 const std::string& input, const CommandLimits& limits);
// The same on a new session channel of `session`, which must be in blocking mode.
Result<CommandResult> RunCommand(Session& session, const std::string& command,
                                 const std::string& input = "", const CommandLimits& limits = {});

}  // namespace tether::ssh
