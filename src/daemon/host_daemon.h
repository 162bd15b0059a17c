// The daemon of one host: owns the event loop, the SSH session, the forwards and the
// control socket. Everything after Start() runs on the loop thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/ssh_config.h"
#include "control/control_server.h"
#include "control/mux_server.h"
#include "daemon/connector.h"
#include "daemon/control_api.h"
#include "daemon/control_path_listener.h"
#include "daemon/fast_exec.h"
#include "daemon/forwards_record.h"
#include "daemon/lane_pool.h"
#include "daemon/link_supervisor.h"
#include "daemon/login_relay.h"
#include "daemon/session_pool.h"
#include "daemon/state_dir.h"
#include "forward/forward.h"
#include "forward/http_probe.h"
#include "forward/owner_check.h"
#include "forward/port_watch.h"
#include "forward/pump_set.h"
#include "forward/window_budget.h"
#include "net/connect_pool.h"
#include "net/event_loop.h"
#include "proxy/target.h"
#include "ssh/global_requests.h"
#include "ssh/link.h"
#include "ssh/server_opens.h"
#include "ssh/session.h"

namespace tether::daemon {

// Sum of receive windows granted over all channels (see forward/window_budget.h).
inline constexpr size_t kWindowBudgetBytes = 256u << 20;
// How long a connection accepted while the link is down waits for it to come back.
inline constexpr std::chrono::seconds kPendingConnectionWait{30};
// How often the daemon checks the link (keepalive, waiting connections, sleep).
inline constexpr std::chrono::milliseconds kLinkTick{250};

class HostDaemon : public control::MuxHost,
                   private ControlApi::Daemon,
                   private LinkSupervisor::Owner,
                   private forward::AutoForwardPlan::Sink {
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
  // The -o options the daemon was started with, for `status` (see DaemonStatus).
  void SetSshOptions(std::vector<std::string> options) { ssh_options_ = std::move(options); }
  // Takes the connected session and opens the control socket.
  Status Start(std::unique_ptr<ssh::Session> session);
  // Runs until `down` or a signal. A lost link is noticed (keepalive, EOF, errors) and
  // reconnected with backoff while the listeners stay open (daemon/link_supervisor.h).
  // Fails only if the event loop itself does.
  Status Run();

  // Whether this version can run a forward of this kind and shape.
  static bool Supports(const config::ForwardSpec& spec);

  // Puts the daemon's control commands (docs/control-protocol.md, daemon/control_api.h)
  // on `server`. Start() does it on HOST.sock; tests and fuzzers on a server without a
  // listener, on a daemon that was never started (no link: the handlers answer as during
  // an outage). The daemon must outlive the server. Loop thread.
  void RegisterControlHandlers(control::ControlServer& server) {
    api_.Register(server);
    login_->Register(server);
  }
  // Whether a reconnect that needs a person's answer sends a desktop notification
  // (`notify` in config.toml; on by default). Before Start().
  void SetNotify(bool notify) { notify_ = notify; }
  // Ports that forward themselves (forward/port_watch.h): the server's listeners are
  // watched from Start() on. Before Start().
  void SetAutoForward(forward::AutoForwardPolicy policy);
  // Commands in milliseconds (daemon/fast_exec.h): a resident runner on the server, from
  // the first link on, takes the commands it can. `binary` is the tether-agent to run
  // there. Before Start().
  void SetFastExec(const std::string& binary);
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
  nlohmann::json AutoForwardOf(const forward::Forward& fwd) const override;
  nlohmann::json AutoForwardStatus() const override;
  nlohmann::json FastExecStatus() const override;

  // forward::AutoForwardPlan::Sink: the auto forwards' -L listeners.
  bool Bind(uint16_t server_port, uint16_t local_port, uint64_t inode) override;
  void Unbind(uint16_t server_port) override;
  // Asks an auto forward whose command line named no app what it serves (its URL).
  void ProbeAutoForward(const forward::Forward* fwd, uint16_t server_port, uint16_t local_port);
  // One read of the server's listeners (PortWatch).
  void OnServerListeners(const std::vector<forward::SocketEntry>& table, uint32_t uid);
  // Ports of the server never forwarded by themselves: sshd's, tether's own there, the
  // targets of the user's -L forwards, and (the server being this machine) our own.
  std::set<uint16_t> AutoForwardExclusions(const std::vector<forward::SocketEntry>& table) const;

  // LinkSupervisor::Owner. LinkUp puts a connected session on the loop as the main link
  // and serves on it (fails only if libssh cannot make its event); LinkLost ends what ran
  // on the link and keeps the listeners.
  Status LinkUp(std::unique_ptr<ssh::Session> session,
                std::chrono::milliseconds dead_after) override;
  void LinkLost(const std::string& why) override;
  uint64_t LinkBytesIn() const override { return link_->bytes_in(); }
  void SendKeepalive() override { requests_.SendKeepalive(); }
  std::optional<bool> PeerAcknowledges(std::chrono::milliseconds within) override;
  void NeedsLogin(const std::string& why) override;

  // Runs a command on the server as a session of the daemon's own (the owner check's and
  // the port watch's shell loops); `what` names it in the log.
  forward::OwnerCheck::Runner ServerRunner(const std::string& what);
  void OnLinkTick();
  void AfterIteration();
  // Rewrites HOST.forwards with the forwards now (daemon/forwards_record.h).
  void RecordForwards();
  std::vector<RecordedForward> RecordedForwards() const;
  void Shutdown(const std::string& why);
  // Makes the forward of `spec` (binding its listeners for -L/-D), without starting it.
  Result<std::unique_ptr<forward::Forward>> MakeForward(const config::ForwardSpec& spec);
  // Starts a made forward on the loop and the current session (if any).
  void StartForward(forward::Forward& fwd);
  // The forward listening where `spec` listens (same side), or forwards_.end().
  std::vector<std::unique_ptr<forward::Forward>>::iterator FindForwardAt(
      const config::ForwardSpec& spec);
  // Where a new -L/-D stream runs: on the least busy of the main connection and the lanes
  // that are up (the main one on a tie). True when a lane took it.
  bool PlaceStream(forward::NewStream& stream);
  // Opens the lanes still missing, while the link is up and a -L or -D forward exists.
  void EnsureLanes(std::chrono::steady_clock::time_point now);
  // Whether a server's forwarded-tcpip open for address:port belongs to a remote forward
  // (see ssh::ServerOpens: asked inside libssh).
  bool WantsServerChannel(const std::string& address, uint16_t port) const;
  // Hands the channels the server opened to their remote forwards.
  void ServeAccepted();

  config::HostConfig host_;
  StateDir state_;
  // HOST.forwards: written from Start on, removed when Run ends cleanly.
  ForwardsRecorder record_{state_.ForwardsPath(host_.alias), host_.alias};
  net::EventLoop loop_;
  std::unique_ptr<ssh::Link> link_;  // the main connection, null while it is down
  std::unique_ptr<char[]> scratch_;
  forward::WindowBudget budget_{kWindowBudgetBytes};
  forward::PumpContext pump_context_;
  std::unique_ptr<forward::PumpSet> pumps_;
  // Before forwards_, which use it, and sessions_, which run it: destroyed after both.
  std::unique_ptr<forward::OwnerCheck> owner_check_;
  // --auto-forward: what watches the server and what decides (null when off), and what is
  // known of each auto forward.
  struct AutoForward {
    uint16_t server_port = 0;
    std::string process;  // the server process's name, "" until known
    std::string url;      // the URL to open on the laptop, "" when none is known
    // Asks the forward what it serves when the command line did not tell (null else).
    std::unique_ptr<forward::HttpProbe> probe;
  };
  // --fast-exec (null when off); before sessions_ is destroyed (its runner runs there).
  std::unique_ptr<FastExec> fast_exec_;
  std::unique_ptr<forward::PortWatch> port_watch_;
  std::unique_ptr<forward::AutoForwardPlan> auto_plan_;
  forward::AutoForwardPolicy auto_policy_;
  std::map<const forward::Forward*, AutoForward> auto_forwards_;
  // Listeners (by inode) that an sshd process holds: a remote forward's, ours or another
  // connection's of this account (one whose request we saw fail). sshd's own, never
  // forwarded by themselves.
  std::set<uint64_t> sshd_listeners_;
  std::vector<std::unique_ptr<forward::Forward>> forwards_;
  std::unique_ptr<control::ControlServer> control_;
  std::unique_ptr<control::MuxServer> mux_;
  // The mux protocol at the user's own ControlPath too, when ssh_config names one.
  std::unique_ptr<ControlPathListener> control_path_;
  // Sessions of the mux and exec, and the connections past MaxSessions they need.
  std::unique_ptr<SessionPool> sessions_;
  net::Reach laptop_network_ = net::Reach::kPublic;
  std::vector<std::string> ssh_options_;
  LanePool lanes_{host_.alias, budget_};
  ssh::GlobalRequests requests_;
  // The server proxy's user and token: random per daemon, never logged.
  proxy::Credentials proxy_credentials_;
  std::unique_ptr<net::ConnectPool> connects_;
  ssh::ServerOpens opens_{[this](const std::string& address, uint16_t port) {
                            return WantsServerChannel(address, port);
                          },
                          host_.alias};
  std::chrono::steady_clock::time_point started_;
  // `uname -sm` of the server, from the first login (reconnects skip the probe).
  std::string remote_system_;

  // The link's life: keepalive, sleep, probe, reconnect (daemon/link_supervisor.h).
  LoopClock clock_{loop_};
  std::unique_ptr<HostDialer> dialer_;
  std::unique_ptr<LinkSupervisor> supervisor_;
  // A person's login over the control socket (`tether login`); lets the dialling thread go
  // before dialer_ joins it.
  std::unique_ptr<LoginRelay> login_;
  bool notify_ = true;

  ControlApi api_{*this, host_.alias};
};

}  // namespace tether::daemon
