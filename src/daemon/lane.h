// A lane: one more SSH connection to the host for -L and -D streams, owned by a thread of
// its own (its own event loop, session, pumps and scratch buffer). One SSH connection is
// one cipher state, so libssh encrypts and decrypts it on one thread and sshd serves it
// with one process: with several streams at once, the daemon spreads them over its main
// connection and its lanes, and the work spreads over the cores.
//
// The lane connects on its thread (never prompting), then serves what it is handed until
// told to stop or until its connection dies; a failed lane does not reconnect, the daemon
// retires it and opens another later. It keeps no keepalive of its own: the main
// connection's keepalive judges the path, and the daemon retires every lane with it.
// Every method is for the daemon's thread; the lane's thread touches only what is below
// "shared".
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/result.h"
#include "config/ssh_config.h"
#include "forward/pump_set.h"
#include "forward/window_budget.h"
#include "net/wake_pipe.h"
#include "ssh/session.h"

namespace tether::daemon {

class Lane {
 public:
  enum class State { kConnecting, kUp, kEnded };

  // Starts the thread, which connects with `options` (a reconnect's short TCP timeout).
  // A write into the connection that makes no progress for `dead_after` fails it (as the
  // main connection's keepalive would). `budget` is the daemon's and must outlive the lane.
  Lane(int number, config::HostConfig host, ssh::ConnectOptions options,
       std::chrono::milliseconds dead_after, forward::WindowBudget& budget);
  // Stops the thread and waits for it: at once when it serves, bounded by the connect's
  // timeouts while it connects (see finished(), to retire a lane without waiting).
  // Streams still on the lane end with it.
  ~Lane();
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;

  // Takes the stream to run on this lane; false (stream untouched) unless the lane is up.
  bool Offer(forward::NewStream& stream);
  // Asks the thread to end (it closes its session and streams); returns at once.
  void RequestStop();

  int number() const { return number_; }
  State state() const { return state_.load(); }
  // True once the thread has returned: destroying the lane will not wait.
  bool finished() const { return finished_.load(); }
  // Why the connect failed or the connection ended ("" while fine).
  std::string error() const;
  // What kind of failure that was (see Session::Connect): an auth or host-key failure
  // turns lanes off, anything else is retried later.
  ErrorCode error_code() const;
  // Streams handed to this lane that have not ended (queued or running).
  uint64_t live() const { return queued_.load() + running_.load(); }
  uint64_t streams() const { return streams_.load(); }

 private:
  void Main();
  void Serve(std::unique_ptr<ssh::Session> session);
  void Fail(ErrorCode code, const std::string& why);

  const int number_;
  const config::HostConfig host_;
  const ssh::ConnectOptions options_;
  const std::chrono::milliseconds dead_after_;
  forward::WindowBudget& budget_;

  // shared with the lane's thread
  std::atomic<State> state_{State::kConnecting};
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::atomic<uint64_t> queued_{0};
  std::atomic<uint64_t> running_{0};
  std::atomic<uint64_t> streams_{0};
  net::WakePipe wake_;
  mutable std::mutex mu_;
  std::deque<forward::NewStream> inbox_;  // guarded by mu_
  std::string error_;                     // guarded by mu_
  ErrorCode error_code_ = ErrorCode::kOther;  // guarded by mu_

  std::thread thread_;
};

// As `status` says it: "connecting", "up", "ended".
const char* ToString(Lane::State state);

}  // namespace tether::daemon
