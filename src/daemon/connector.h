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
#include "daemon/link_supervisor.h"
#include "net/connect_pool.h"
#include "net/event_loop.h"
#include "net/wake_pipe.h"
#include "ssh/session.h"

namespace tether::daemon {

// A reconnect's TCP connect gives up after this (see ssh::ConnectOptions).
inline constexpr std::chrono::milliseconds kReconnectTcpTimeout{2000};
// A reconnect attempt without ConnectTimeout gives up after this long.
inline constexpr std::chrono::seconds kReconnectTimeout{10};

// The host as the daemon dials it again (reconnects, lanes, extra links): the handshake
// bounded by kReconnectTimeout unless ConnectTimeout says otherwise.
config::HostConfig RedialHost(const config::HostConfig& host);

class Connector {
 public:
  using Done = std::function<void(Result<std::unique_ptr<ssh::Session>>)>;

  // `done` runs on the loop thread.
  Connector(net::EventLoop& loop, Done done);
  // Waits for an attempt in flight (bounded by the connection's own timeouts).
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // Starts an attempt unless one runs. Prompts through `prompter` (called from the
  // attempt's thread; it must outlive the attempt) when given, else nobody is asked (a
  // daemon has no terminal).
  void Start(const config::HostConfig& host, const ssh::ConnectOptions& options,
             ssh::Prompter* prompter = nullptr);
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

// The main link's dialer: reconnects through a Connector, probes through `connects`.
// `loop` and `connects` must outlive it; destroying it waits for an attempt in flight.
class HostDialer : public LinkSupervisor::Dialer {
 public:
  HostDialer(net::EventLoop& loop, net::ConnectPool& connects, config::HostConfig host);

  // TCP connect within kReconnectTcpTimeout, and no `uname` (see the .cc).
  void Dial(UniqueFd first_hop, ssh::Prompter* prompter, Dialed done) override;
  bool dialing() const override { return connector_.running(); }
  void Probe(std::chrono::milliseconds within, Probed done) override;

 private:
  net::ConnectPool& connects_;
  const config::HostConfig host_;
  Dialed done_;  // of the attempt in flight
  Connector connector_;
};

}  // namespace tether::daemon
