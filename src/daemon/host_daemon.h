// The daemon of one host: owns the event loop, the SSH session, the forwards and the
// control socket. Everything after Start() runs on the loop thread.
#pragma once

#include <libssh/libssh.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/ssh_config.h"
#include "control/control_server.h"
#include "control/mux_server.h"
#include "daemon/backoff.h"
#include "daemon/connector.h"
#include "daemon/control_api.h"
#include "daemon/exec_session.h"
#include "daemon/keepalive.h"
#include "daemon/lane_pool.h"
#include "daemon/state_dir.h"
#include "forward/forward.h"
#include "forward/owner_check.h"
#include "forward/pump_set.h"
#include "forward/window_budget.h"
#include "net/connect_pool.h"
#include "net/event_loop.h"
#include "proxy/target.h"
#include "ssh/global_requests.h"
#include "ssh/link.h"
#include "ssh/session.h"

namespace tether::daemon {

// Sum of receive windows granted over all channels (see forward/window_budget.h).
inline constexpr size_t kWindowBudgetBytes = 256u << 20;
// How long a connection accepted while the link is down waits for it to come back.
inline constexpr std::chrono::seconds kPendingConnectionWait{30};
// How often the daemon checks the link (keepalive, waiting connections, sleep).
inline constexpr std::chrono::milliseconds kLinkTick{250};
// Further connections a daemon opens for sessions past sshd's MaxSessions (10 by default):
// with these, 90 more commands at once. Few, so as not to trip MaxStartups.
inline constexpr size_t kMaxExtraLinks = 8;
// How soon sessions refused for MaxSessions are placed again when nothing else (a session
// ending, a connection coming up) has done it: a round trip or two on most links.
inline constexpr std::chrono::milliseconds kParkedRetry{100};
// An extra connection with no session for this long is closed.
inline constexpr std::chrono::seconds kExtraLinkIdle{60};
// While the link is down, the path to the server is probed with a TCP connect this often
// (and each probe gives up after as long): when one gets through, the reconnect starts at
// once on that very connection instead of at the next backoff step, so a forward serves
// again within about a second of the network's return, whatever the outage's length. The
// probe is not closed and dialled again: OpenSSH 9.8+ penalises a connection that closes
// without authenticating (PerSourcePenalties), so the probe that finds sshd logs in.
inline constexpr std::chrono::milliseconds kReachabilityProbe{1000};
// When the keepalive finds the server silent but its TCP stack still acknowledges what we
// send, sshd is busy, not gone (measured: sshd with 1000 channels whose readers stall
// answers nothing for many seconds): the link is kept this much longer before it is
// called dead. A dead path gets no acknowledgments and is dropped as before.
inline constexpr std::chrono::seconds kBusyServerGrace{60};
// A reconnect's TCP connect gives up after this (see ssh::ConnectOptions).
inline constexpr std::chrono::milliseconds kReconnectTcpTimeout{2000};
// A reconnect attempt without ConnectTimeout gives up after this long.
inline constexpr std::chrono::seconds kReconnectTimeout{10};

class HostDaemon : public control::MuxHost, private ControlApi::Daemon {
 public:
  HostDaemon(config::HostConfig host, StateDir state);
  ~HostDaemon() override;
  HostDaemon(const HostDaemon&) = delete;
  HostDaemon& operator=(const HostDaemon&) = delete;

  // Binds every forward's listener; errors name the forward and the port.
  Status BindForwards(const std::vector<config::ForwardSpec>& specs);

  // Starts the server proxy (--proxy, see daemon::ProxyOptions); at most one a daemon.
  using ProxyOptions = daemon::ProxyOptions;
  Status EnableProxy(const ProxyOptions& options) override;
  // Further connections for -L and -D streams, each on its own thread (daemon/lane.h);
  // 0: every stream on the main connection. Before Start().
  void SetLanes(int lanes) { lanes_.SetWanted(lanes); }
  // What of the laptop's network the server proxy and reverse dynamic forwards may reach
  // (net/address_scope.h; public by default). Before BindForwards and EnableProxy.
  void SetLaptopNetwork(net::Reach reach) { laptop_network_ = reach; }
  // Takes the connected session and opens the control socket.
  Status Start(std::unique_ptr<ssh::Session> session);
  // Runs until `down` or a signal. A lost link is noticed (keepalive, EOF, errors) and
  // reconnected with backoff while the listeners stay open. Fails only if the event
  // loop itself does.
  Status Run();

  // Whether this version can run a forward of this kind and shape.
  static bool Supports(const config::ForwardSpec& spec);

  // Puts the daemon's control commands (docs/control-protocol.md, daemon/control_api.h)
  // on `server`. Start() does it on HOST.sock; tests and fuzzers on a server without a
  // listener, on a daemon that was never started (no link: the handlers answer as during
  // an outage). The daemon must outlive the server. Loop thread.
  void RegisterControlHandlers(control::ControlServer& server) { api_.Register(server); }
  // The reply to `status`.
  nlohmann::json StatusJson() const { return api_.StatusJson(); }

  // control::MuxHost: sessions and forwards for ssh -S HOST.mux and tether exec/ssh.
  uint32_t StartSession(const control::mux::NewSession& request, UniqueFd in, UniqueFd out,
                        UniqueFd err, SessionEvents events) override;
  uint32_t StartStdioForward(const control::mux::StdioForward& request, UniqueFd in, UniqueFd out,
                             SessionEvents events) override;
  void EndSession(uint32_t id) override;
  void OpenForward(const control::mux::Forward& request,
                   std::function<void(Result<uint32_t>)> done) override;
  Status CloseForward(const control::mux::Forward& request) override;
  uint32_t Pid() override;
  void Terminate() override;
  const std::vector<std::unique_ptr<forward::Forward>>& forwards() const override {
    return forwards_;
  }

 private:
  // ControlApi::Daemon, for the control handlers.
  DaemonStatus Snapshot() const override;
  Result<forward::Forward*> AddForwardSpec(const config::ForwardSpec& spec, bool* added) override;
  forward::Forward* FindForward(const config::ForwardSpec& spec) override;
  void RemoveForward(forward::Forward& fwd) override;
  const proxy::Credentials& proxy_credentials() const override { return proxy_credentials_; }
  void StopSoon(const std::string& why) override;

  // Puts a connected session on the loop as the main link; fails only if libssh cannot
  // make its event.
  Status AttachSession(std::unique_ptr<ssh::Session> session);
  void LinkLost(const std::string& why);
  void ScheduleReconnect();
  // The host as the daemon dials it again (reconnects, lanes, extra links): the handshake
  // bounded by kReconnectTimeout unless ConnectTimeout says otherwise.
  config::HostConfig RedialHost() const;
  // Starts a reconnect now: TCP connect within kReconnectTcpTimeout.
  // `first_hop` (optional): the reachability probe's connection, to log in on.
  void Redial(UniqueFd first_hop = {});
  // Any byte from the server is life: the keepalive hears it and the server is not busy.
  void NoteBytesReceived(std::chrono::steady_clock::time_point now);
  // When a silent link counts as dead: the keepalive's verdict, or what it will be.
  std::chrono::milliseconds DeadAfter() const;
  void OnReconnected(Result<std::unique_ptr<ssh::Session>> result);
  void OnLinkTick();
  // While the link is down: a TCP probe of the first hop (see kReachabilityProbe).
  void ProbeReachability(std::chrono::steady_clock::time_point now);
  // After the main link drained what arrived: keepalive accounting, a lost link noticed.
  void OnMainLinkInput();
  // After an extra link drained: the extra links that ended are dropped, with their
  // sessions.
  void OnExtraLinkInput();
  void AfterIteration();
  void Shutdown(const std::string& why);
  // Makes the forward of `spec` (binding its listeners for -L/-D), without starting it.
  Result<std::unique_ptr<forward::Forward>> MakeForward(const config::ForwardSpec& spec);
  // Starts a made forward on the loop and the current session (if any).
  void StartForward(forward::Forward& fwd);
  // The forward listening where `spec` listens (same side), or forwards_.end().
  std::vector<std::unique_ptr<forward::Forward>>::iterator FindForwardAt(
      const config::ForwardSpec& spec);
  uint32_t StartExec(ExecRequest request, UniqueFd in, UniqueFd out, UniqueFd err,
                     SessionEvents events, const std::string& what);
  void ServiceSessions();
  // Sessions past MaxSessions: a connection with room for one more (main first), or null.
  // The first connection with room for one more session (its learned MaxSessions), other
  // than `avoid`; null if none.
  ssh_session PickLink(ssh_session avoid = nullptr);
  // Gives parked sessions a connection, asking for a new one when none has room.
  void PlaceParked();
  // Erases finished sessions on the next round of the loop, when none of their calls can
  // be on the stack (see EndSession).
  void ReapSessionsSoon();
  void OnExtraLink(Result<std::unique_ptr<ssh::Session>> result);
  // Where a new -L/-D stream runs: on the least busy of the main connection and the lanes
  // that are up (the main one on a tie). True when a lane took it.
  bool PlaceStream(forward::NewStream& stream);
  // Opens the lanes still missing, while the link is up and a -L or -D forward exists.
  void EnsureLanes(std::chrono::steady_clock::time_point now);
  void DropExtraLinks(const std::string& why);
  void CheckExtraLinks(std::chrono::steady_clock::time_point now);
  // libssh's message callback: accepts the server's forwarded-tcpip opens that belong to
  // a remote forward (and refuses the rest); runs inside libssh, so it only queues.
  static int OnMessage(ssh_session session, ssh_message message, void* self);
  // Hands the channels OnMessage accepted to their remote forwards.
  void ServeAccepted();

  config::HostConfig host_;
  StateDir state_;
  net::EventLoop loop_;
  std::unique_ptr<ssh::Link> link_;  // the main connection, null while it is down
  std::unique_ptr<char[]> scratch_;
  forward::WindowBudget budget_{kWindowBudgetBytes};
  forward::PumpContext pump_context_;
  std::unique_ptr<forward::PumpSet> pumps_;
  // Before forwards_, which use it, and sessions_, which run it: destroyed after both.
  std::unique_ptr<forward::OwnerCheck> owner_check_;
  std::vector<std::unique_ptr<forward::Forward>> forwards_;
  std::unique_ptr<control::ControlServer> control_;
  std::unique_ptr<control::MuxServer> mux_;
  // Sessions are erased only where none of their calls is on the stack: by ServiceSessions
  // right after its own call returns, or by ReapSessionsSoon's timer.
  std::map<uint32_t, std::unique_ptr<ExecSession>> sessions_;
  bool reap_scheduled_ = false;
  uint32_t next_session_ = 1;
  // Further connections for sessions (see kMaxExtraLinks), and what we learned of each
  // connection's MaxSessions (the number open when sshd refused one more).
  struct ExtraLink {
    std::unique_ptr<ssh::Link> link;
    std::chrono::steady_clock::time_point idle_since;
  };
  std::vector<ExtraLink> extra_links_;
  std::unique_ptr<Connector> extra_connector_;
  std::map<ssh_session, size_t> session_limit_;
  // Parked sessions and the connection that last refused them for MaxSessions.
  std::map<uint32_t, ssh_session> refused_on_;
  bool place_retry_armed_ = false;
  net::Reach laptop_network_ = net::Reach::kPublic;
  LanePool lanes_{host_.alias, budget_};
  ssh::GlobalRequests requests_;
  // The server proxy's user and token: random per daemon, never logged.
  proxy::Credentials proxy_credentials_;
  std::unique_ptr<net::ConnectPool> connects_;
  struct Accepted {
    ssh_channel channel;
    std::string address;  // where the server accepted it (the forward's listen address)
    uint16_t port;
    std::string origin_host;
    uint16_t origin_port;
  };
  std::vector<Accepted> accepted_;
  std::chrono::steady_clock::time_point started_;
  // `uname -sm` of the server, from the first login (reconnects skip the probe).
  std::string remote_system_;

  // The link: state for `status`, keepalive accounting, reconnects.
  LinkState link_state_ = LinkState::kUp;
  std::string last_error_;
  int reconnects_ = 0;
  std::optional<Keepalive> keepalive_;
  // Since when the server has been silent while its TCP stack acknowledges (see
  // kBusyServerGrace); unset while it answers.
  std::optional<std::chrono::steady_clock::time_point> server_busy_since_;
  uint64_t last_in_bytes_ = 0;
  Backoff backoff_;
  std::unique_ptr<Connector> connector_;
  net::EventLoop::TimerId reconnect_timer_ = 0;
  // Probing applies after network failures, not after auth or host-key ones (a working
  // server would be hammered for nothing).
  bool probe_path_ = true;
  bool probe_in_flight_ = false;
  std::chrono::steady_clock::time_point last_probe_{};
  std::chrono::steady_clock::time_point last_tick_mono_;
  std::chrono::nanoseconds last_tick_boot_{0};

  ControlApi api_{*this, host_.alias};
};

}  // namespace tether::daemon
