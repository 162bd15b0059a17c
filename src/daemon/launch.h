// Starting a daemon in the background, and the one word it sends back to `tether up`:
//
//   Launch() --fork--> child: setsid, umask 077, stdin from /dev/null, stdout and stderr
//     |                        appended to the log, then body(ready) and _exit(its value)
//     |                          ready.Report(status): "running", or why it could not start
//     `-- waits for that word on a pipe, at most ready_timeout
//
// The child never returns into the caller's stack: what the caller holds (a session, a
// lock) belongs to the child after the fork, and the parent should leave without
// destroying it (`up` ends with _exit). Threads do not survive the fork: only the calling
// thread runs in the child, so the caller stops its own (jump relays) before Launch.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tether::daemon {

// The child's end of the pipe.
class ReadySignal {
 public:
  explicit ReadySignal(UniqueFd fd) : fd_(std::move(fd)) {}
  // Tells the parent whether the daemon started (ok) or why not, and closes the pipe;
  // only the first call counts. A child that never calls it is one that did not start.
  void Report(const Status& started);

 private:
  UniqueFd fd_;
};

struct LaunchOptions {
  std::string name;      // whose daemon, in the error when it says nothing ("gpu")
  std::string log_path;  // the child's stdout and stderr, appended (made 0600)
  std::chrono::milliseconds ready_timeout{30000};
};

// In the child: says its word through `ready`, runs, and returns its exit status.
using DaemonBody = std::function<int(ReadySignal& ready)>;

// Forks the daemon and waits for its word. Returns its pid once it said it runs; the
// child's own Error when it said it could not start; an Error naming the log ("NAME:
// the daemon did not start; see LOG") when it ended or timed out without a word (it is
// then sent SIGTERM); a "daemon" Error when the pipe or the fork failed.
Result<pid_t> Launch(const LaunchOptions& options, const DaemonBody& body);

// The word on the pipe: "R\0" for running, or "E" and the Error's code, errno, step,
// message and hint, each ended by a NUL.
std::string EncodeReadyWord(const Status& started);

struct ReadyWord {
  enum class State { kNeedMore, kReady, kFailed, kBad };
  State state = State::kNeedMore;
  Error error;  // kFailed: the child's Error
};
// Reads a word from the bytes received so far (the pipe may deliver it in pieces).
ReadyWord DecodeReadyWord(std::string_view bytes);

}  // namespace tether::daemon
