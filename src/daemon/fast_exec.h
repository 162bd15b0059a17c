// Commands in milliseconds (`tether up HOST --fast-exec`): the daemon keeps a resident
// runner on the server (`tether-agent --runner`, agent/runner.h) and sends the commands it
// can take (SessionPool::ForRunner) to it over one direct-streamlocal channel each,
// instead of a session each: no sshd fork, PAM or rc files per command.
//
//   down -> starting -> ready            (the runner said where it listens)
//                    -> installing -> starting   (its binary is not on the server yet)
//                    -> unavailable      (another system there; the copy failed)
//
// The runner is a command of the daemon's own session, started on every link up: its
// environment is what sshd gives a command then, and it ends with the link (nothing is
// left running on the server). Its binary is the tether-agent beside this tether, copied
// once to ~/.cache/tether/bin/tether-agent-HASH (0700) over the connection; a new build
// has a new name. A runner that ends, or that a command found gone or broken, is started
// again (at once after a clean run, else backing off), and until it says it is ready
// commands go as sessions, which is also what they do when it cannot take one. Loop
// thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/unique_fd.h"
#include "daemon/session_pool.h"
#include "net/event_loop.h"

namespace tether::daemon {

// A runner that fails soon after it starts is started again after this, doubled up to
// kRunnerRetryMax; one that ran longer than kRunnerHealthy at once.
inline constexpr std::chrono::seconds kRunnerRetryMin{1};
inline constexpr std::chrono::seconds kRunnerRetryMax{60};
inline constexpr std::chrono::seconds kRunnerHealthy{10};
// Where the runner must have said it listens (or what it lacks) after its start.
inline constexpr std::chrono::seconds kRunnerGreetingTimeout{20};
// A runner that says it is ready but that commands cannot reach this many times in a row
// (sshd's AllowStreamLocalForwarding no, say) is given up: commands go as sessions.
inline constexpr int kRunnerUnreachableLimit = 3;

// The runner's command line on the server: the system check, then the runner, or a word
// that its binary is missing. Pure, for tests.
std::string RunnerStartCommand(const std::string& remote_path, const std::string& local_system);
// The copy's command line: `cat` into a private temporary, then renamed into place.
std::string RunnerInstallCommand(const std::string& remote_path);

class FastExec {
 public:
  enum class State { kDown, kStarting, kInstalling, kReady, kUnavailable };

  // `binary` is the runner's executable on the laptop (a static tether-agent for this
  // system). `pool` and `loop` must outlive it.
  FastExec(net::EventLoop& loop, SessionPool& pool, std::string alias, std::string binary);
  ~FastExec();
  FastExec(const FastExec&) = delete;
  FastExec& operator=(const FastExec&) = delete;

  // The main link came up: the runner is started on it.
  void LinkUp();
  // The link is gone, and the runner with it.
  void LinkDown();

  State state() const { return state_; }
  static const char* StateName(State s);
  // Why it is unavailable or was last restarted ("" when nothing went wrong).
  const std::string& why() const { return why_; }
  uint64_t restarts() const { return restarts_; }

 private:
  void Launch();
  void Install();
  void OnOutput();
  void OnErrorOutput();
  void OnLine(const std::string& line);
  void OnEnded(const std::string& why);
  void OnTrouble(const std::string& why);
  // Ends the runner's session (if any) and forgets its descriptors.
  void Close();
  void RetryLater();
  // Names the binary on the server (remote_path_) from its bytes, read once; false (and
  // unavailable) when there is none.
  bool KnowBinary();
  // Its bytes into `bytes` (false, and unavailable, when it cannot be read).
  bool ReadBinary(std::string* bytes);

  net::EventLoop& loop_;
  SessionPool& pool_;
  const std::string alias_;
  const std::string binary_path_;
  std::string upload_;       // its bytes while a copy runs, else empty
  std::string remote_path_;  // "$HOME/.cache/tether/bin/tether-agent-HASH"
  std::string local_system_;

  State state_ = State::kDown;
  std::string why_;
  bool link_up_ = false;
  uint32_t session_ = 0;  // the runner's (or the copy's) session in the pool; 0: none
  UniqueFd io_, err_;     // our ends of its stdin+stdout and its stderr
  std::string out_buf_, err_buf_;
  std::string last_said_;  // the server's last whole line on stderr
  size_t upload_sent_ = 0;
  std::chrono::steady_clock::time_point started_at_;
  std::chrono::seconds retry_ = kRunnerRetryMin;
  net::EventLoop::TimerId retry_timer_ = 0, greeting_timer_ = 0;
  uint64_t generation_ = 0;  // callbacks of an earlier session are ignored
  uint64_t restarts_ = 0;
  int unreachable_ = 0;  // troubles in a row with no command by the runner between
  uint64_t by_runner_at_trouble_ = 0;
};

}  // namespace tether::daemon
