#include "forward/laptop_exit.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/log.h"

namespace tether::forward {
namespace {

proxy::ConnectFailure Classify(const Error& e) {
  switch (e.sys_errno) {
    case ECONNREFUSED:
      return proxy::ConnectFailure::kRefused;
    case ETIMEDOUT:
      return proxy::ConnectFailure::kTimedOut;
    case EHOSTUNREACH:
    case ENETUNREACH:
      return proxy::ConnectFailure::kUnreachable;
    default:
      if (e.code == ErrorCode::kPolicy) return proxy::ConnectFailure::kNotAllowed;
      return e.code == ErrorCode::kResolve ? proxy::ConnectFailure::kUnreachable
                                           : proxy::ConnectFailure::kOther;
  }
}

// For a target handed to an upstream proxy unresolved: the scope of an address literal
// (or of "localhost"), nullopt for a name.
std::optional<net::AddressScope> LiteralScope(const std::string& host) {
  const bool localhost_name =
      host == "localhost" ||
      (host.size() > 10 && host.compare(host.size() - 10, 10, ".localhost") == 0);
  if (localhost_name) return net::AddressScope::kLoopback;
  return net::ScopeOfLiteral(host);
}

}  // namespace

LaptopExit::LaptopExit(net::EventLoop& loop, net::ConnectPool& connects,
                       std::optional<proxy::UpstreamProxy> upstream, bool use_environment,
                       net::Reach reach)
    : loop_(loop),
      connects_(connects),
      reach_(reach),
      upstream_(std::move(upstream)),
      use_environment_(use_environment),
      relays_(loop) {}

LaptopExit::~LaptopExit() { Clear(); }

std::string LaptopExit::Describe() const {
  if (upstream_) return upstream_->ToString();
  return use_environment_ ? "direct (or the laptop's proxy variables)" : "direct";
}

void LaptopExit::Dispatch(UniqueFd client, std::unique_ptr<proxy::ProxyHandshake> handshake,
                          std::string log_prefix) {
  uint64_t id = next_id_++;
  auto d = std::make_unique<Dial>();
  d->client = std::move(client);
  d->handshake = std::move(handshake);
  d->log_prefix = std::move(log_prefix);
  const proxy::Target& target = d->handshake->target();
  d->via = upstream_;
  if (!d->via && use_environment_) {
    d->via = proxy::UpstreamFromEnvironment([](const char* name) { return std::getenv(name); },
                                            target, d->handshake->forwards_http());
  }
  spdlog::debug("[{}] {} {} via {}", d->log_prefix, proxy::ProtocolName(d->handshake->protocol()),
                target.ToString(), d->via ? d->via->ToString() : "direct");
  std::string host = d->via ? d->via->host : target.host;
  uint16_t port = d->via ? d->via->port : target.port;
  const bool through_upstream = d->via.has_value();
  dials_.emplace(id, std::move(d));
  if (through_upstream) {
    auto scope = LiteralScope(target.host);
    if (scope && !net::Allows(reach_, *scope)) {
      Fail(id, proxy::ConnectFailure::kNotAllowed,
           target.ToString() + " is " + net::DescribeScope(*scope) +
               ", which the server may not reach through the laptop");
      return;
    }
  }
  dials_[id]->job = connects_.Connect(
      host, port, "", kExitConnectTimeout,
      [this, id](Result<UniqueFd> s) { OnConnected(id, std::move(s)); },
      through_upstream ? net::Reach::kAll : reach_);
}

void LaptopExit::OnConnected(uint64_t id, Result<UniqueFd> socket) {
  auto it = dials_.find(id);
  if (it == dials_.end()) return;
  Dial& d = *it->second;
  if (!socket.ok()) {
    std::string what =
        d.via ? "upstream proxy " + d.via->ToString() : d.handshake->target().ToString();
    Fail(id, Classify(socket.error()), what + ": " + socket.error().message);
    return;
  }
  if (!d.via) {
    Finish(id, std::move(*socket), "");
    return;
  }
  if (d.via->kind == proxy::UpstreamProxy::Kind::kHttp && d.handshake->forwards_http()) {
    // A plain-http request goes to an HTTP upstream as a proxy request of its own.
    Finish(id, std::move(*socket), "");
    return;
  }
  d.upstream = std::move(*socket);
  d.talk = std::make_unique<proxy::UpstreamHandshake>(*d.via, d.handshake->target());
  loop_.Watch(d.upstream.get(), net::kWritable, [this, id](unsigned) { OnUpstreamEvents(id); });
}

void LaptopExit::OnUpstreamEvents(uint64_t id) {
  auto it = dials_.find(id);
  if (it == dials_.end()) return;
  Dial& d = *it->second;
  std::string out = d.talk->TakeOutput();
  if (!out.empty() && ::send(d.upstream.get(), out.data(), out.size(),
                             MSG_NOSIGNAL | MSG_DONTWAIT) != static_cast<ssize_t>(out.size())) {
    // Handshake messages are a few hundred bytes into an empty socket buffer.
    Fail(id, proxy::ConnectFailure::kOther, "upstream proxy: write failed");
    return;
  }
  char buf[4096];
  ssize_t n = ::recv(d.upstream.get(), buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    Fail(id, proxy::ConnectFailure::kOther,
         "upstream proxy " + d.via->ToString() + " closed the connection");
    return;
  }
  if (n > 0) {
    switch (d.talk->Feed(std::string_view(buf, static_cast<size_t>(n)))) {
      case proxy::UpstreamHandshake::Step::kNeedMore:
        break;
      case proxy::UpstreamHandshake::Step::kFailed:
        Fail(id,
             d.talk->refused() ? proxy::ConnectFailure::kRefused : proxy::ConnectFailure::kOther,
             d.talk->error());
        return;
      case proxy::UpstreamHandshake::Step::kDone: {
        loop_.Unwatch(d.upstream.get());
        std::string rest = d.talk->TakeRest();
        UniqueFd up = std::move(d.upstream);
        Finish(id, std::move(up), std::move(rest));
        return;
      }
    }
  }
  loop_.SetInterest(d.upstream.get(),
                    d.talk->TakeOutputPending() ? net::kReadable | net::kWritable : net::kReadable);
}

void LaptopExit::Fail(uint64_t id, proxy::ConnectFailure why, const std::string& message) {
  auto it = dials_.find(id);
  if (it == dials_.end()) return;
  Dial& d = *it->second;
  spdlog::info("[{}] cannot reach {}: {}", d.log_prefix, d.handshake->target().ToString(), message);
  std::string reply = d.handshake->Failed(why, message);
  (void)::send(d.client.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  if (d.upstream) loop_.Unwatch(d.upstream.get());
  dials_.erase(it);
}

void LaptopExit::Finish(uint64_t id, UniqueFd out, std::string first_from_target) {
  auto it = dials_.find(id);
  if (it == dials_.end()) return;
  Dial& d = *it->second;
  std::string to_client = d.handshake->Connected() + first_from_target;
  std::string to_target = d.handshake->TakeUpstream();
  if (d.via && d.via->kind == proxy::UpstreamProxy::Kind::kHttp && d.handshake->forwards_http()) {
    to_target = proxy::ToAbsoluteForm(to_target, d.handshake->target(), d.via->credentials);
  }
  relays_.Start(std::move(d.client), std::move(out), std::move(to_client), std::move(to_target),
                d.log_prefix);
  dials_.erase(it);
}

void LaptopExit::Clear() {
  for (auto& [id, d] : dials_) {
    if (d->job != 0) connects_.Cancel(d->job);
    if (d->upstream) loop_.Unwatch(d->upstream.get());
  }
  dials_.clear();
  relays_.Clear();
}

}  // namespace tether::forward
