// The host daemon's control API (docs/control-protocol.md): the handlers of HOST.sock's
// commands and the JSON of `status`. It sees the daemon through ControlApi::Daemon, a
// narrow interface (a status snapshot, the forward list, adding and cancelling forwards,
// the server proxy, stopping), so the handlers change with the protocol and the daemon
// with the link, each for its own reason. Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/forward_spec.h"
#include "control/control_server.h"
#include "daemon/control_path_status.h"
#include "daemon/lane_pool.h"
#include "daemon/link_state.h"
#include "forward/forward.h"
#include "proxy/target.h"

namespace tether::daemon {

// The server proxy (--proxy): HTTP and SOCKS on the server's 127.0.0.1:port, leaving from
// the laptop (through `upstream` when set, else the laptop's proxy variables, else
// directly). Unless `open`, clients must give the daemon's proxy user and token.
struct ProxyOptions {
  static constexpr uint16_t kDefaultPort = 10808;
  uint16_t port = kDefaultPort;
  bool open = false;
  std::string upstream;  // "" or an http:// / socks5:// URL
};

// What `status` says of a daemon, besides its forwards: taken whole at each request.
struct DaemonStatus {
  std::string host;  // the alias
  std::string user;
  std::string hostname;
  uint16_t port = 0;
  LinkState state = LinkState::kUp;
  int64_t pid = 0;
  std::chrono::seconds uptime{0};
  std::optional<std::chrono::milliseconds> rtt;
  int reconnects = 0;
  std::string last_error;
  std::string cipher;         // "" while the link is down
  std::string remote_system;  // likewise
  uint64_t window_budget_used = 0;
  uint64_t server_requests = 0;
  int lanes_wanted = 0;
  std::string lanes_off;  // why lanes stay off, "" otherwise
  std::vector<LaneStatus> lanes;
  // Commands and mux sessions running, waiting for room (MaxSessions), and the
  // connections they are spread over.
  uint64_t sessions_live = 0;
  uint64_t sessions_waiting = 0;
  uint64_t connections = 0;
  // The user's own ControlPath, when ssh_config names one (daemon/control_path_listener.h).
  std::optional<ControlPathStatus> control_path;
  // What only takes effect when the daemon starts, for `up` on a running host to compare
  // with what it asks for: --laptop-network, the ProxyJump hops, the identity files and
  // the -o options given at start.
  std::string laptop_network;
  std::vector<std::string> jump;
  std::vector<std::string> identity_files;
  std::vector<std::string> ssh_options;
};

class ControlApi {
 public:
  // What the handlers need of the daemon.
  class Daemon {
   public:
    virtual ~Daemon() = default;
    virtual DaemonStatus Snapshot() const = 0;
    virtual const std::vector<std::unique_ptr<forward::Forward>>& forwards() const = 0;
    // Adds the forward of `spec` and starts it, or finds the same one running (`added`
    // false); fails when another forward listens there or the listener cannot bind.
    virtual Result<forward::Forward*> AddForwardSpec(const config::ForwardSpec& spec,
                                                     bool* added) = 0;
    // The forward listening where `spec` listens (same side: laptop or server), or null.
    virtual forward::Forward* FindForward(const config::ForwardSpec& spec) = 0;
    // Stops `fwd` (one of forwards()) and drops it.
    virtual void RemoveForward(forward::Forward& fwd) = 0;
    virtual Status EnableProxy(const ProxyOptions& options) = 0;
    // The server proxy's user and token.
    virtual const proxy::Credentials& proxy_credentials() const = 0;
    // Stops the daemon on the next wake-up (after the reply is sent).
    virtual void StopSoon(const std::string& why) = 0;
    // `status`'s "auto" of a forward that forwarded itself (--auto-forward), else null.
    virtual nlohmann::json AutoForwardOf(const forward::Forward& /*fwd*/) const { return nullptr; }
    // `status`'s "auto_forward": null when off.
    virtual nlohmann::json AutoForwardStatus() const { return nullptr; }
    // `status`'s "fast_exec": null when off.
    virtual nlohmann::json FastExecStatus() const { return nullptr; }
  };

  // `daemon` must outlive the API and every server it registered on.
  ControlApi(Daemon& daemon, std::string host_alias);

  // Puts the control commands on `server`.
  void Register(control::ControlServer& server);
  // The whole `status` reply: the daemon's snapshot, and the process's read-ahead mode
  // (ssh::ReadAheadStatus()).
  nlohmann::json StatusJson() const;
  // `status`'s "lanes" and "sessions" parts.
  static nlohmann::json LanesJson(const DaemonStatus& status);
  static nlohmann::json SessionsJson(const DaemonStatus& status);
  // `status`'s "control_path": null when ssh_config names none.
  static nlohmann::json ControlPathJson(const DaemonStatus& status);
  // One forward as `status` and the forward commands show it.
  static nlohmann::json ForwardJson(const forward::Forward& fwd);

 private:
  Result<control::Json> AddForward(const control::Json& request);
  Result<control::Json> CancelForward(const control::Json& request);
  // Cancels the forward of `kind` listening where `text` (a spec or its listening side) says.
  Result<control::Json> CancelForwardAt(config::ForwardKind kind, const std::string& text);
  Result<control::Json> ProxyEnv(const control::Json& request);
  Result<control::Json> AddProxy(const control::Json& request);

  Daemon& daemon_;
  const std::string alias_;
};

}  // namespace tether::daemon
