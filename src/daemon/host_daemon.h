// The daemon of one host: owns the event loop, the SSH session, the forwards and the
// control socket. Everything after Start() runs on the loop thread.
#pragma once

#include <libssh/libssh.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/ssh_config.h"
#include "control/control_server.h"
#include "daemon/backoff.h"
#include "daemon/connector.h"
#include "daemon/keepalive.h"
#include "daemon/state_dir.h"
#include "forward/local_forward.h"
#include "forward/pump_set.h"
#include "forward/window_budget.h"
#include "net/event_loop.h"
#include "ssh/session.h"

namespace tether::daemon {

// Sum of receive windows granted over all channels (see forward/window_budget.h).
inline constexpr size_t kWindowBudgetBytes = 256u << 20;
// How long a connection accepted while the link is down waits for it to come back.
inline constexpr std::chrono::seconds kPendingConnectionWait{30};
// How often the daemon checks the link (keepalive, waiting connections, sleep).
inline constexpr std::chrono::milliseconds kLinkTick{250};
// A reconnect attempt without ConnectTimeout gives up after this long.
inline constexpr std::chrono::seconds kReconnectTimeout{10};

class HostDaemon {
 public:
  HostDaemon(config::HostConfig host, StateDir state);
  ~HostDaemon();
  HostDaemon(const HostDaemon&) = delete;
  HostDaemon& operator=(const HostDaemon&) = delete;

  // Binds every forward's listener; errors name the forward and the port.
  Status BindForwards(const std::vector<config::ForwardSpec>& specs);
  // Takes the connected session and opens the control socket.
  Status Start(std::unique_ptr<ssh::Session> session);
  // Runs until `down` or a signal. A lost link is noticed (keepalive, EOF, errors) and
  // reconnected with backoff while the listeners stay open. Fails only if the event
  // loop itself does.
  Status Run();

  nlohmann::json StatusJson() const;
  const std::vector<std::unique_ptr<forward::LocalForward>>& forwards() const { return forwards_; }

 private:
  void AttachSession(std::unique_ptr<ssh::Session> session);
  void LinkLost(const std::string& why);
  void ScheduleReconnect();
  void OnReconnected(Result<std::unique_ptr<ssh::Session>> result);
  void OnLinkTick();
  void OnSessionEvents(unsigned events);
  void AfterIteration();
  void Shutdown(const std::string& why);
  void RegisterControlHandlers();

  config::HostConfig host_;
  StateDir state_;
  net::EventLoop loop_;
  std::unique_ptr<ssh::Session> session_;
  ssh_event ssh_event_ = nullptr;
  std::unique_ptr<char[]> scratch_;
  forward::WindowBudget budget_{kWindowBudgetBytes};
  forward::PumpContext pump_context_;
  std::unique_ptr<forward::PumpSet> pumps_;
  std::vector<std::unique_ptr<forward::LocalForward>> forwards_;
  std::unique_ptr<control::ControlServer> control_;
  std::chrono::steady_clock::time_point started_;
  bool session_wants_write_ = false;

  // The link: state for `status`, keepalive accounting, reconnects.
  std::string link_state_ = "up";  // up, reconnecting, needs-auth
  std::string last_error_;
  int reconnects_ = 0;
  std::optional<Keepalive> keepalive_;
  ssh_counter_struct counter_{};  // socket bytes of the current session
  uint64_t last_in_bytes_ = 0;
  Backoff backoff_;
  std::unique_ptr<Connector> connector_;
  net::EventLoop::TimerId reconnect_timer_ = 0;
  std::chrono::steady_clock::time_point last_tick_mono_;
  std::chrono::nanoseconds last_tick_boot_{0};
};

}  // namespace tether::daemon
