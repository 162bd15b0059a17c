// Connects to a host off the event loop: DNS, TCP, key exchange and authentication
// block, and a reconnect must never freeze the listeners. One attempt at a time runs on
// its own thread; the loop learns of the result through a pipe and takes the session.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "common/result.h"
#include "common/unique_fd.h"
#include "config/ssh_config.h"
#include "net/event_loop.h"
#include "net/wake_pipe.h"
#include "ssh/session.h"

namespace tether::daemon {

class Connector {
 public:
  using Done = std::function<void(Result<std::unique_ptr<ssh::Session>>)>;

  // `done` runs on the loop thread.
  Connector(net::EventLoop& loop, Done done);
  // Waits for an attempt in flight (bounded by the connection's own timeouts).
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // Starts an attempt unless one runs. Never prompts (a daemon has no terminal).
  void Start(const config::HostConfig& host, const ssh::ConnectOptions& options);
  bool running() const { return thread_.joinable(); }

 private:
  void OnWake();

  net::EventLoop& loop_;
  Done done_;
  net::WakePipe wake_;
  std::thread thread_;
  std::mutex mu_;
  std::optional<Result<std::unique_ptr<ssh::Session>>> result_;  // guarded by mu_
};

}  // namespace tether::daemon
