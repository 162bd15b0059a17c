#include "forward/remote_forward.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "forward/socket_table.h"
#include "net/socket.h"
#include "proxy/handshake.h"

namespace tether::forward {

RemoteForward::RemoteForward(const config::ForwardSpec& spec, std::string host_alias,
                             Context context, ProxySettings proxy)
    : Forward(spec, std::move(host_alias)), context_(context), proxy_(std::move(proxy)) {
  if (spec_.dynamic) {
    exit_ = std::make_unique<LaptopExit>(*context_.loop, *context_.connects, proxy_.upstream,
                                         proxy_.use_environment, proxy_.reach);
    proxied_ = std::make_unique<ProxyConnections>(
        *context_.loop, proxy_.policy,
        [this](UniqueFd client, std::unique_ptr<proxy::ProxyHandshake> h, std::string prefix) {
          exit_->Dispatch(std::move(client), std::move(h), std::move(prefix));
        },
        stats_, context_.limits);
  }
  listen_address_ = ListenAddressAt(spec.listen.port);
}

RemoteForward::~RemoteForward() {
  if (request_ != 0) context_.requests->Forget(request_);
  if (holder_ticket_ != 0) context_.owner_check->Cancel(holder_ticket_);
  if (account_ticket_ != 0) context_.owner_check->Cancel(account_ticket_);
  DropPending();
  if (proxied_) proxied_->Clear();
  if (exit_) exit_->Clear();
}

void RemoteForward::DropPending() {
  for (auto& [n, p] : pending_) {
    context_.connects->Cancel(p.job);
    ssh_channel_free(p.channel);
  }
  pending_.clear();
  for (auto& [n, v] : vetting_) {
    context_.owner_check->Cancel(v.ticket);
    ssh_channel_free(v.channel);
  }
  vetting_.clear();
}

void RemoteForward::SetSession(ssh_session session) {
  if (state_ == ForwardState::kStopped) return;
  // The old session's requests and channels died with it.
  if (request_ != 0) context_.requests->Forget(request_);
  request_ = 0;
  DropPending();
  session_ = session;
  bound_port_ = 0;
  if (session_ == nullptr) {
    state_ = ForwardState::kWaitingForLink;
    return;
  }
  backoff_.Reset();
  Request();
}

std::string RemoteForward::RequestAddress() const {
  // An empty bind address is "localhost" on the server, as ssh sends it without
  // GatewayPorts; "*" asks for every address (the server's GatewayPorts decides).
  std::string address = spec_.listen.host.empty() ? "localhost" : spec_.listen.host;
  if (address == "*") address = "";
  // Any port is a port of tether's choosing (ssh/global_requests.h), so asked on 127.0.0.1
  // alone: sshd says yes to "localhost" when it can listen on either of its two
  // addresses, and a yes must mean the port is ours where programs connect.
  if (spec_.listen.port == 0 && address == "localhost") address = "127.0.0.1";
  return address;
}

std::string RemoteForward::ListenAddressAt(uint16_t port) const {
  const std::string address = RequestAddress();
  return "server " + net::FormatHostPort(address.empty() ? "*" : address, port);
}

void RemoteForward::Request() {
  state_ = ForwardState::kRequesting;
  const std::string address = RequestAddress();
  request_ = context_.requests->Listen(address, spec_.listen.port,
                                       [this](Result<uint16_t> r) { OnAnswer(std::move(r)); });
}

void RemoteForward::WhenAnswered(std::function<void(Result<uint16_t>)> done) {
  if (state_ == ForwardState::kListening) return done(bound_port_);
  answer_waiters_.push_back(std::move(done));
}

void RemoteForward::OnAnswer(Result<uint16_t> answer) {
  request_ = 0;
  std::vector<std::function<void(Result<uint16_t>)>> waiters;
  waiters.swap(answer_waiters_);
  for (auto& w : waiters) {
    if (answer.ok()) {
      w(*answer != 0 ? *answer : spec_.listen.port);
    } else {
      w(answer.error());
    }
  }
  if (answer.ok()) {
    state_ = ForwardState::kListening;
    holder_.clear();
    squatter_.reset();
    bound_port_ = *answer != 0 ? *answer : spec_.listen.port;
    error_.clear();
    backoff_.Reset();
    if (spec_.listen.port == 0) listen_address_ = ListenAddressAt(bound_port_);
    spdlog::info("[{} rfwd {}] the server listens on {}", host_alias_, spec_.listen.port,
                 listen_address_);
    if (Gated()) context_.owner_check->Warm();  // the first connection need not wait for it
    AskWhoHoldsThePort();                       // another account on the port's other address?
    return;
  }
  auto delay = backoff_.Next();
  state_ = ForwardState::kRetrying;
  error_ = spec_.ToFlagString() + ": " + answer.error().message +
           " (the port is taken on the server, perhaps by a stale sshd child of an earlier "
           "connection, or sshd forbids it: AllowTcpForwarding, PermitListen); retrying in " +
           std::to_string((delay.count() + 500) / 1000) + " s";
  retry_at_ = std::chrono::steady_clock::now() + delay;
  spdlog::warn("[{} rfwd {}] {}", host_alias_, spec_.listen.port, error_);
  AskWhoHoldsThePort();
}

void RemoteForward::AskWhoHoldsThePort() {
  // For -R 0, the port the server gave, once it gave one.
  const uint16_t port = spec_.listen.port != 0 ? spec_.listen.port : bound_port_;
  if (context_.owner_check == nullptr || holder_ticket_ != 0 || port == 0) return;
  holder_ticket_ = context_.owner_check->WhoListens(port, [this,
                                                           port](const OwnerCheck::Answer& answer) {
    holder_ticket_ = 0;
    if (state_ != ForwardState::kRetrying && state_ != ForwardState::kListening) return;
    std::string was = holder_;
    if (answer.verdict != OwnerCheck::Verdict::kOther) squatter_.reset();
    if (answer.verdict == OwnerCheck::Verdict::kOther) {
      if (!squatter_ || squatter_->uid != answer.uid) {
        squatter_ = PortSquatter{answer.uid, ""};
        AskAccountName(port);
      }
      DescribeSquatter(port);
    } else if (answer.verdict == OwnerCheck::Verdict::kOwner && state_ == ForwardState::kRetrying) {
      holder_ = "port " + std::to_string(port) +
                " on the server is held by a process of your own account (an sshd of an "
                "earlier connection frees it when it notices)";
    } else {
      holder_.clear();
    }
    if (!holder_.empty() && holder_ != was) {
      spdlog::warn("[{} rfwd {}] {}", host_alias_, port, holder_);
    }
  });
}

void RemoteForward::AskAccountName(uint16_t port) {
  if (account_ticket_ != 0) context_.owner_check->Cancel(account_ticket_);
  const uint32_t uid = squatter_->uid;
  account_ticket_ =
      context_.owner_check->AccountOf(uid, [this, port, uid](const OwnerCheck::Answer& answer) {
        account_ticket_ = 0;
        if (!squatter_ || squatter_->uid != uid || answer.account.empty()) return;
        squatter_->account = answer.account;
        DescribeSquatter(port);
        spdlog::warn("[{} rfwd {}] {}", host_alias_, port, holder_);
      });
}

void RemoteForward::DescribeSquatter(uint16_t port) {
  const std::string who = "uid " + std::to_string(squatter_->uid) +
                          (squatter_->account.empty() ? "" : " (" + squatter_->account + ")");
  if (state_ == ForwardState::kListening) {
    // The server listens for us on one of localhost's addresses and that account on the
    // other: a program there that connects to "localhost" may reach either.
    holder_ = "port " + std::to_string(port) + " on the server is also held by " + who +
              ", another account, on another of its addresses: a connection there may reach "
              "that account instead of this forward";
    return;
  }
  holder_ = "port " + std::to_string(port) + " on the server is held by " + who +
            ", another account: nothing of yours is sent there";
}

void RemoteForward::OnTick(std::chrono::steady_clock::time_point now) {
  if (state_ == ForwardState::kRetrying && session_ != nullptr && now >= retry_at_) Request();
  if (proxied_) proxied_->Expire(now);
}

void RemoteForward::Stop() {
  if (state_ == ForwardState::kStopped) return;
  if (request_ != 0) context_.requests->Forget(request_);
  request_ = 0;
  DropPending();
  if (session_ != nullptr && state_ == ForwardState::kListening) {
    context_.requests->CancelListen(RequestAddress(), bound_port_, nullptr);
  }
  state_ = ForwardState::kStopped;
}

ForwardState RemoteForward::state() const { return state_; }

bool RemoteForward::AcceptsServerChannel(const std::string& address, uint16_t port) const {
  if (state_ != ForwardState::kListening || port != bound_port_) return false;
  // sshd names the address as we asked for it; "" and "*" are the same request.
  const std::string want = RequestAddress();
  return address == want || (want.empty() && address == "*") ||
         (want == "localhost" && (address == "127.0.0.1" || address == "::1"));
}

void RemoteForward::ServeServerChannel(ssh_channel channel, const std::string& origin_host,
                                       uint16_t origin_port) {
  uint64_t n = next_conn_++;
  std::string prefix = host_alias_ + (server_proxy() ? " proxy " : " rfwd ") +
                       std::to_string(bound_port_) + " #" + std::to_string(n);
  if (size_t open = open_connections(); open >= context_.limits.max_connections) {
    ++stats_->refused_connections;
    if (!logged_full_) {
      logged_full_ = true;
      spdlog::warn("[{}] refusing connections: {} open, the listener's cap", prefix, open);
    }
    // A proxy client is told so in its protocol (no byte of it goes anywhere); else the
    // client on the server sees its connection closed.
    if (spec_.dynamic && proxied_->can_answer_busy()) {
      return ServeDynamic(channel, std::move(prefix), proxy_.policy,
                          std::to_string(open) + " connections open");
    }
    ssh_channel_free(channel);
    return;
  } else if (open < context_.limits.max_connections / 2) {
    logged_full_ = false;
  }
  if (Gated()) {
    if (vetting_.size() >= context_.limits.max_handshakes) {
      // The check answers in turn: a flood from another account queued in full would
      // keep the owner's own connections waiting behind it until they time out.
      ++stats_->refused_handshakes;
      spdlog::debug("[{}] refused: {} connections wait for the owner check", prefix,
                    vetting_.size());
      ssh_channel_free(channel);
      return;
    }
    // Not a byte moves before the check says whose process connected.
    std::string origin = net::FormatHostPort(origin_host, origin_port);
    auto ticket = context_.owner_check->Check(
        origin_host, origin_port, bound_port_,
        [this, n, prefix](const OwnerCheck::Answer& answer) { OnOwnerAnswer(n, prefix, answer); });
    vetting_.emplace(n, Vetting{ticket, channel, std::move(origin)});
    return;
  }
  if (spec_.dynamic) return ServeDynamic(channel, std::move(prefix), proxy_.policy);
  spdlog::debug("[{}] connection from {} on the server to {}", prefix,
                net::FormatHostPort(origin_host, origin_port), spec_.target.ToString());
  auto job = context_.connects->Connect(
      spec_.target.host, spec_.target.port, spec_.target.path, kTargetConnectTimeout,
      [this, n, prefix](Result<UniqueFd> socket) mutable {
        auto it = pending_.find(n);
        if (it == pending_.end()) return;
        ssh_channel ch = it->second.channel;
        pending_.erase(it);
        if (!socket.ok()) {
          ++stats_->total;
          ++stats_->failed;
          spdlog::warn("[{}] cannot reach {}: {}", prefix, spec_.target.ToString(),
                       socket.error().message);
          ssh_channel_free(ch);  // the server's side sees the channel close
          return;
        }
        context_.pumps->Adopt(session_, ch, std::move(*socket), stats_, std::move(prefix));
      });
  pending_.emplace(n, Pending{job, channel});
}

size_t RemoteForward::open_connections() const {
  return stats_->live.load(std::memory_order_relaxed) + pending_.size() + vetting_.size();
}

void RemoteForward::ServeDynamic(ssh_channel channel, std::string prefix,
                                 const proxy::ProxyPolicy& policy, const std::string& busy) {
  // The client on the server speaks SOCKS or HTTP: a pump joins the channel to one end
  // of a socketpair, the proxy handshake runs on the other.
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0) {
    spdlog::warn("[{}] socketpair: {}", prefix, std::strerror(errno));
    ssh_channel_free(channel);
    return;
  }
  context_.pumps->Adopt(session_, channel, UniqueFd(pair[0]), stats_, prefix);
  if (!busy.empty()) return proxied_->Refuse(UniqueFd(pair[1]), std::move(prefix), busy);
  proxied_->Accept(UniqueFd(pair[1]), std::move(prefix), policy);
}

void RemoteForward::OnOwnerAnswer(uint64_t n, const std::string& prefix,
                                  const OwnerCheck::Answer& answer) {
  auto it = vetting_.find(n);
  if (it == vetting_.end()) return;
  Vetting v = std::move(it->second);
  vetting_.erase(it);
  using Verdict = OwnerCheck::Verdict;
  if (answer.verdict == Verdict::kOwner) {
    // Known by uid: no token is asked of the owner's own processes.
    proxy::ProxyPolicy policy = proxy_.policy;
    policy.require_auth = false;
    return ServeDynamic(v.channel, prefix, policy);
  }
  if (answer.verdict == Verdict::kUnavailable && proxy_.policy.require_auth) {
    return ServeDynamic(v.channel, prefix, proxy_.policy);  // the token decides
  }
  ++stats_->refused_owner;
  if (answer.verdict == Verdict::kOther) {
    spdlog::warn(
        "[{}] refused a connection from {} on the server: it is uid {}'s, and this "
        "listener serves uid {} alone",
        prefix, v.origin, answer.uid, context_.owner_check->owner_uid());
  } else {
    spdlog::warn("[{}] refused a connection from {} on the server: {}", prefix, v.origin,
                 answer.why);
  }
  ssh_channel_free(v.channel);  // the client on the server sees its connection close
}

Access RemoteForward::access() const {
  if (!spec_.dynamic) return Access::kNotApplicable;
  if (!Gated()) return proxy_.policy.require_auth ? Access::kToken : Access::kAnyone;
  switch (context_.owner_check->mode()) {
    case OwnerCheck::Mode::kStarting:
      return Access::kChecking;
    case OwnerCheck::Mode::kByUid:
      return Access::kOwner;
    case OwnerCheck::Mode::kUnavailable:
      return proxy_.policy.require_auth ? Access::kToken : Access::kNobody;
  }
  return Access::kChecking;
}

std::string RemoteForward::error() const {
  if (access() == Access::kNobody && error_.empty()) {
    return "every connection is refused: " + context_.owner_check->unavailable_why() +
           "; the server proxy (--proxy) asks a token instead";
  }
  if (holder_.empty()) return error_;
  return error_.empty() ? holder_ : error_ + "; " + holder_;
}

std::optional<ServerProxyStatus> ServerProxy::server_proxy() const {
  return ServerProxyStatus{bound_port() != 0 ? bound_port() : spec_.listen.port,
                           !policy().require_auth, state(), access()};
}

}  // namespace tether::forward
