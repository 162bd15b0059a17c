#include "forward/local_forward.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.h"
#include "net/socket.h"

namespace tether::forward {
namespace {

// Accepts per wake-up per listener: a burst of connects is taken in slices so the
// loop keeps serving the streams already open.
constexpr int kAcceptBurst = 64;

// The peer's address for the channel's "originator" fields.
std::pair<std::string, uint16_t> PeerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {"127.0.0.1", 0};
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return {buf, ntohs(a->sin_port)};
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return {buf, ntohs(a->sin6_port)};
  }
  return {"127.0.0.1", 0};
}

// Reads and drops what a held client sent (its request), so that closing the connection
// sends a FIN: closed with unread data, the kernel sends a reset instead, and the client
// sees "connection reset" where it should see the end of the stream. Bounded: 64 reads.
void DropUnread(int fd) {
  char buf[16384];
  for (int i = 0; i < 64 && ::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0; ++i) {
  }
}

}  // namespace

Result<std::unique_ptr<LocalForward>> LocalForward::Bind(const config::ForwardSpec& spec,
                                                         std::string host_alias) {
  std::unique_ptr<LocalForward> fwd(new LocalForward(spec, std::move(host_alias)));
  if (spec.listen.is_unix()) {
    auto fd = net::ListenUnix(spec.listen.path);
    if (!fd.ok()) {
      Error e = fd.take_error();
      e.message = spec.ToFlagString() + ": " + e.message;
      return e;
    }
    fwd->listeners_.push_back(std::move(*fd));
    fwd->unix_path_ = spec.listen.path;
    fwd->listen_address_ = spec.listen.path;
    return fwd;
  }
  auto fds = net::ListenTcp(spec.listen.host, spec.listen.port);
  if (!fds.ok()) {
    Error e = fds.take_error();
    e.message = spec.ToFlagString() + ": " + e.message;
    return e;
  }
  fwd->listeners_ = std::move(*fds);
  fwd->listen_address_ = net::FormatHostPort(
      spec.listen.host.empty() ? "127.0.0.1" : spec.listen.host, spec.listen.port);
  return fwd;
}

LocalForward::~LocalForward() { Stop(); }

void LocalForward::Start(const StartContext& context) {
  net::EventLoop& loop = *context.loop;
  max_wait_ = context.max_wait;
  limits_ = context.limits;
  loop_ = &loop;
  pumps_ = context.pumps;
  placer_ = context.placer;
  session_ = context.session;
  if (spec_.dynamic) {
    // A -D port on the laptop's loopback needs no password, as ssh -D.
    proxied_ = std::make_unique<ProxyConnections>(
        loop, proxy::ProxyPolicy{},
        [this](UniqueFd client, std::unique_ptr<proxy::ProxyHandshake> h, std::string prefix) {
          ServeProxied(std::move(client), std::move(h), std::move(prefix));
        },
        stats_, limits_);
  }
  for (auto& l : listeners_) {
    acceptors_.push_back(std::make_unique<net::Acceptor>(
        loop, l.get(), host_alias_ + " fwd " + listen_address_, kAcceptBurst,
        [this](UniqueFd conn) { OnAccepted(std::move(conn)); }));
  }
}

void LocalForward::Stop() {
  acceptors_.clear();  // before the descriptors they watch
  listeners_.clear();
  if (loop_ != nullptr) {
    for (auto& w : waiting_) loop_->Unwatch(w.fd.get());
  }
  waiting_.clear();
  if (proxied_) proxied_->Clear();
  if (!unix_path_.empty()) {
    ::unlink(unix_path_.c_str());
    unix_path_.clear();
  }
  loop_ = nullptr;
}

size_t LocalForward::open_connections() const {
  return stats_->live.load(std::memory_order_relaxed) + waiting_.size() +
         (proxied_ ? proxied_->size() : 0);
}

void LocalForward::OnAccepted(UniqueFd conn) {
  if (size_t open = open_connections(); open >= limits_.max_connections) {
    ++stats_->refused_connections;
    if (!logged_full_) {
      logged_full_ = true;
      spdlog::warn("[{} fwd {}] refusing connections: {} open, the listener's cap", host_alias_,
                   listen_address_, open);
    }
    // A proxy client is told so in its protocol; a -L one sees its connection closed.
    if (proxied_) {
      proxied_->Refuse(std::move(conn), host_alias_ + " fwd " + listen_address_,
                       std::to_string(open) + " connections open");
    }
    return;
  } else if (open < limits_.max_connections / 2) {
    logged_full_ = false;
  }
  if (!spec_.listen.is_unix()) net::SetNoDelay(conn.get());
  if (session_ == nullptr) {
    // The link is down: hold the connection (the client sees it accepted and waits)
    // until it is back or the wait runs out. Watched meanwhile, so that a client that
    // gives up is let go rather than opened on the server once the link is back.
    int fd = conn.get();
    waiting_.push_back(Waiting{std::move(conn), std::chrono::steady_clock::now()});
    loop_->Watch(fd, net::kReadable, [this, fd](unsigned) { OnWaitingEvent(fd); });
    return;
  }
  Serve(std::move(conn));
}

void LocalForward::Serve(UniqueFd conn) {
  auto [origin_host, origin_port] = PeerOf(conn.get());
  uint64_t n = next_conn_++;
  std::string prefix =
      host_alias_ + " fwd " +
      (spec_.listen.is_unix() ? spec_.listen.path : std::to_string(spec_.listen.port)) + " #" +
      std::to_string(n);
  if (proxied_) {
    proxied_->Accept(std::move(conn), std::move(prefix));
    return;
  }
  spdlog::debug("[{}] connection from {} to {}", prefix,
                net::FormatHostPort(origin_host, origin_port), spec_.target.ToString());
  Run(NewStream{std::move(conn), spec_.target.host, spec_.target.port, spec_.target.path,
                origin_host, origin_port, stats_, std::move(prefix), PumpHooks{}});
}

void LocalForward::Run(NewStream stream) {
  if (placer_ && placer_(stream)) return;
  pumps_->Start(session_, std::move(stream));
}

void LocalForward::OnWaitingEvent(int fd) {
  char byte;
  ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) {
    // The client already sent its request: it keeps waiting; stop watching until served.
    loop_->SetInterest(fd, net::kNone);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  // EOF or an error: the client gave up.
  loop_->Unwatch(fd);
  std::erase_if(waiting_, [fd](const Waiting& w) { return w.fd.get() == fd; });
}

void LocalForward::SetSession(ssh_session session) {
  session_ = session;
  if (session_ == nullptr || pumps_ == nullptr) return;
  std::vector<Waiting> waiting;
  waiting.swap(waiting_);
  for (auto& w : waiting) loop_->Unwatch(w.fd.get());
  if (!waiting.empty()) {
    spdlog::info("[{} fwd {}] link is back: serving {} waiting connection(s)", host_alias_,
                 listen_address_, waiting.size());
  }
  for (auto& w : waiting) Serve(std::move(w.fd));
}

void LocalForward::OnTick(std::chrono::steady_clock::time_point now) {
  ExpireWaiting(now, max_wait_);
  if (proxied_) proxied_->Expire(now);
}

namespace {

// The server's reason for refusing a channel, as the proxy protocols can say it.
proxy::ConnectFailure FailureOf(const std::string& error) {
  if (error.find("refused") != std::string::npos) return proxy::ConnectFailure::kRefused;
  if (error.find("prohibited") != std::string::npos) return proxy::ConnectFailure::kNotAllowed;
  if (error.find("unreachable") != std::string::npos ||
      error.find("resolve") != std::string::npos || error.find("not known") != std::string::npos) {
    return proxy::ConnectFailure::kUnreachable;
  }
  if (error.find("timed out") != std::string::npos) return proxy::ConnectFailure::kTimedOut;
  return proxy::ConnectFailure::kOther;
}

}  // namespace

void LocalForward::ServeProxied(UniqueFd client, std::unique_ptr<proxy::ProxyHandshake> handshake,
                                std::string log_prefix) {
  if (session_ == nullptr) {
    // The link went down during the handshake.
    std::string reply = handshake->Failed(proxy::ConnectFailure::kOther, "the link is down");
    (void)::send(client.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ++stats_->failed;
    return;
  }
  auto [origin_host, origin_port] = PeerOf(client.get());
  proxy::Target target = handshake->target();
  spdlog::debug("[{}] {} {}", log_prefix, proxy::ProtocolName(handshake->protocol()),
                target.ToString());
  PumpHooks hooks;
  hooks.to_channel = handshake->TakeUpstream();
  std::shared_ptr<proxy::ProxyHandshake> shared(std::move(handshake));
  hooks.on_open = [shared](bool ok, const std::string& error) {
    return ok ? shared->Connected() : shared->Failed(FailureOf(error), error);
  };
  Run(NewStream{std::move(client), target.host, target.port, "", origin_host, origin_port, stats_,
                std::move(log_prefix), std::move(hooks)});
}

ForwardState LocalForward::state() const {
  if (listeners_.empty()) return ForwardState::kStopped;
  if (session_ == nullptr) return ForwardState::kWaitingForLink;
  return ForwardState::kListening;
}

size_t LocalForward::ExpireWaiting(std::chrono::steady_clock::time_point now,
                                   std::chrono::milliseconds max_wait) {
  size_t before = waiting_.size();
  std::erase_if(waiting_, [&](const Waiting& w) {
    bool expired = now - w.since >= max_wait;
    if (expired) {
      loop_->Unwatch(w.fd.get());
      DropUnread(w.fd.get());
    }
    return expired;
  });
  size_t closed = before - waiting_.size();
  if (closed > 0) {
    stats_->failed += closed;
    spdlog::warn("[{} fwd {}] closed {} connection(s) that waited {} s for the link", host_alias_,
                 listen_address_, closed, max_wait.count() / 1000);
  }
  return closed;
}

}  // namespace tether::forward
