// A remote forward (-R): the server listens (tcpip-forward) and opens a forwarded-tcpip
// channel for each connection it accepts; the laptop connects each one to the target.
//
// Without a target (`-R [bind:]port`, and the server proxy of --proxy) it is a reverse
// dynamic forward: each connection speaks SOCKS or HTTP to us and leaves from the laptop
// (LaptopExit). The proxy part runs on a socketpair whose other end a normal pump joins
// to the channel, so the channel side is the same code as every other forward.
//
// After a reconnect the request goes out again on the new session. A refusal is retried
// with backoff (up to 30 s apart) and shown in status: after a dead link, sshd's child of
// the old connection may still hold the port until it notices, and the port frees then.
// Loop thread only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

#include "daemon/backoff.h"
#include "forward/forward.h"
#include "forward/laptop_exit.h"
#include "forward/owner_check.h"
#include "forward/proxy_connections.h"
#include "forward/pump_set.h"
#include "net/connect_pool.h"
#include "ssh/global_requests.h"

namespace tether::forward {

// Connecting to the laptop-side target gives up after this long.
inline constexpr std::chrono::seconds kTargetConnectTimeout{10};

class RemoteForward : public Forward {
 public:
  struct Context {
    net::EventLoop* loop = nullptr;
    PumpSet* pumps = nullptr;
    ssh::GlobalRequests* requests = nullptr;
    net::ConnectPool* connects = nullptr;
    // Who connected, for reverse dynamic forwards (forward/owner_check.h); shared by the
    // daemon's forwards. Null: no check (every account served, as ssh -R does).
    OwnerCheck* owner_check = nullptr;
    // What the listener may hold at once (tests make them small).
    ListenerLimits limits;
  };
  // For a reverse dynamic forward: who may use it and how connections leave the laptop.
  struct ProxySettings {
    proxy::ProxyPolicy policy;
    std::optional<proxy::UpstreamProxy> upstream;
    bool use_environment = false;  // the laptop's proxy variables, when no upstream is set
    net::Reach reach = net::Reach::kPublic;  // what of the laptop's network it reaches
    // Connections from other accounts on the server are refused (Context::owner_check).
    // Where the server cannot say who connects, `policy` decides: with require_auth the
    // daemon's user and token are asked (the server proxy), without it every connection
    // is refused.
    bool owner_only = true;
  };

  // A -R spec that listens on a TCP port: with a target (host:port or a socket path), or
  // without one (reverse dynamic, with `proxy`).
  RemoteForward(const config::ForwardSpec& spec, std::string host_alias, Context context,
                ProxySettings proxy);
  ~RemoteForward() override;

  void SetSession(ssh_session session) override;
  void OnTick(std::chrono::steady_clock::time_point now) override;
  void Stop() override;
  ForwardState state() const override;
  std::string error() const override;
  Access access() const override;
  std::optional<PortSquatter> squatter() const override { return squatter_; }
  const proxy::ProxyPolicy& policy() const { return proxy_.policy; }
  // Where a reverse dynamic forward's connections leave ("direct", an upstream URL).
  std::string ExitDescription() const { return exit_ ? exit_->Describe() : ""; }
  uint16_t bound_port() const { return bound_port_; }
  uint16_t server_listen_port() const override { return bound_port_; }
  // Connections this listener holds: served (a reverse dynamic one in its handshake too),
  // connecting to the target, waiting for the owner check.
  size_t open_connections() const;
  // Calls `done` once with the server's first answer from now (the port it listens on,
  // or why it refused), or at once if it listens already.
  void WhenAnswered(std::function<void(Result<uint16_t>)> done) override;

  // Whether the server's forwarded-tcpip open for address:port belongs to this forward.
  bool AcceptsServerChannel(const std::string& address, uint16_t port) const override;
  // Serves a channel the server opened (already accepted): connects to the target and
  // pumps. Takes ownership of `channel`.
  void ServeServerChannel(ssh_channel channel, const std::string& origin_host,
                          uint16_t origin_port) override;

 private:
  void Request();
  // The address the server is asked to listen on.
  std::string RequestAddress() const;
  // What status shows as where it listens ("server 127.0.0.1:61234").
  std::string ListenAddressAt(uint16_t port) const;
  void OnAnswer(Result<uint16_t> answer);
  void DropPending();
  // After a refusal: asks the server whose process holds the port (holder_).
  void AskWhoHoldsThePort();
  bool Gated() const { return spec_.dynamic && proxy_.owner_only && context_.owner_check; }
  // After the owner check: serves, or closes, the channel held in vetting_.
  void OnOwnerAnswer(uint64_t n, const std::string& prefix, const OwnerCheck::Answer& answer);
  // A reverse dynamic forward's channel: the proxy handshake runs on a socketpair.
  // With `busy`, the client is answered "busy" in its protocol (over the connection cap).
  void ServeDynamic(ssh_channel channel, std::string prefix, const proxy::ProxyPolicy& policy,
                    const std::string& busy = "");

  Context context_;
  ProxySettings proxy_;
  std::unique_ptr<LaptopExit> exit_;           // reverse dynamic only
  std::unique_ptr<ProxyConnections> proxied_;  // reverse dynamic only
  ssh_session session_ = nullptr;
  ForwardState state_ = ForwardState::kWaitingForLink;
  std::string error_;
  uint16_t bound_port_ = 0;
  ssh::GlobalRequests::RequestId request_ = 0;
  daemon::Backoff backoff_;
  std::chrono::steady_clock::time_point retry_at_{};
  uint64_t next_conn_ = 1;
  bool logged_full_ = false;  // "at its cap" logged since the count was last below half
  std::vector<std::function<void(Result<uint16_t>)>> answer_waiters_;
  // Channels accepted whose laptop-side connect is in flight, by connection number.
  struct Pending {
    net::ConnectPool::JobId job;
    ssh_channel channel;
  };
  std::unordered_map<uint64_t, Pending> pending_;
  // Channels waiting for the owner check, by connection number.
  struct Vetting {
    OwnerCheck::Ticket ticket;
    ssh_channel channel;
    std::string origin;  // host:port on the server, for the log
  };
  std::unordered_map<uint64_t, Vetting> vetting_;
  // Who holds the port the server refused us ("" until known), and the question asked.
  std::string holder_;
  OwnerCheck::Ticket holder_ticket_ = 0;
  // The account holding it, when not ours (its name asked after its uid).
  std::optional<PortSquatter> squatter_;
  OwnerCheck::Ticket account_ticket_ = 0;
  // holder_'s text for another account's uid (and name once known).
  void DescribeSquatter(uint16_t port);
  void AskAccountName(uint16_t port);
};

// The server proxy (--proxy): a reverse dynamic forward on the server's 127.0.0.1 whose
// connections leave from the laptop; `status` shows it as kind "proxy", `tether env`
// finds it by server_proxy().
class ServerProxy final : public RemoteForward {
 public:
  using RemoteForward::RemoteForward;

  const char* kind_name() const override { return "proxy"; }
  std::string target_description() const override { return "laptop: " + ExitDescription(); }
  std::optional<ServerProxyStatus> server_proxy() const override;
};

}  // namespace tether::forward
