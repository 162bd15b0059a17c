// A shell loop kept on the server: one long-lived session over the daemon's connection
// running a small script that reads questions on its stdin, one a line, and answers each
// with lines ending in "end". The owner check and the port watch are both one.
//
// The script first greets with "uid N" (the account we log in as), or "none WHY" when it
// cannot do its work there (then it exits, and the loop is not started again). Lines
// before the greeting are a login shell's banner and skipped. A run that does not greet
// within `stall` of its start, or leaves a question unanswered for `stall`, is ended and
// its owner told (`stopped`); the owner asks for a new run with Run(), which starts at
// most once every `restart` after the last. Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "common/unique_fd.h"
#include "net/event_loop.h"

namespace tether::forward {

class ServerLoop {
 public:
  // Runs `command` on the server with stdin on `in`, stdout on `out` and stderr on `err`;
  // `ended` once when it ends or cannot start (with why). The daemon runs it as a session
  // of its own (HostDaemon::ServerRunner).
  using Ended = std::function<void(const std::string& why)>;
  using Runner = std::function<void(const std::string& command, UniqueFd in, UniqueFd out,
                                    UniqueFd err, Ended ended)>;

  struct Settings {
    std::string command;  // the script
    std::string what;     // for the log: "owner check"
    size_t max_answer = 64u << 10;
    std::chrono::milliseconds stall{5000};
    std::chrono::milliseconds restart{2000};
  };
  // Each may call back into this. All come from the loop's callbacks, but `stopped` also
  // from inside Run (a run that cannot start) or Ask (a write that fails).
  struct Events {
    std::function<void(uint32_t uid)> greeted;
    // The "none WHY" greeting (WHY, maybe ""): the script has exited and no run starts
    // again.
    std::function<void(const std::string& why)> unavailable;
    // The lines of the oldest question's answer, each ending in '\n'.
    std::function<void(std::string answer)> answered;
    // A run ended or failed (not by Close); `silent`: it did not greet or answer in time.
    std::function<void(const std::string& why, bool silent)> stopped;
  };

  ServerLoop(net::EventLoop& loop, Runner run, Settings settings, Events events,
             std::string log_prefix);
  ~ServerLoop();
  ServerLoop(const ServerLoop&) = delete;
  ServerLoop& operator=(const ServerLoop&) = delete;

  // Starts a run unless one runs, one is due (the restart spacing), or it is unavailable.
  void Run();
  // Sends `questions`, one question a '\n'-terminated line; only once greeted. False when
  // the write failed: the run was ended (and `stopped` called).
  bool Ask(std::string_view questions);
  // Ends the run quietly (no `stopped`): the script reads EOF and exits.
  void Close();

  bool running() const { return running_; }
  bool greeted() const { return greeted_; }
  uint32_t uid() const { return uid_; }
  // Questions sent and not answered yet.
  size_t pending() const { return sent_.size(); }
  // The script said it cannot work on the server.
  bool unavailable() const { return unavailable_; }

 private:
  using Clock = std::chrono::steady_clock;
  void StartNow();
  void OnReadable();
  void OnLine(std::string_view line);
  // Ends the run and tells the owner.
  void Stop(const std::string& why, bool silent);
  void ArmStallTimer();
  // When the run counts as silent ({} when nothing is awaited).
  Clock::time_point Deadline() const;

  net::EventLoop& loop_;
  Runner run_;
  Settings settings_;
  Events events_;
  std::string log_prefix_;
  bool unavailable_ = false;

  bool running_ = false;
  bool greeted_ = false;
  uint32_t uid_ = 0;
  UniqueFd io_;              // our end: questions out, answers in
  UniqueFd err_;             // the script's stderr, logged at debug
  std::string in_;           // partial line
  std::string answer_;       // lines of the answer being read
  uint64_t generation_ = 0;  // which run an `ended` belongs to
  Clock::time_point last_start_{};
  std::deque<Clock::time_point> sent_;  // when each unanswered question went
  net::EventLoop::TimerId start_timer_ = 0;
  net::EventLoop::TimerId stall_timer_ = 0;
};

}  // namespace tether::forward
