#include "forward/proxy_connections.h"

#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "common/log.h"

namespace tether::forward {

void ProxyConnections::Accept(UniqueFd client, std::string log_prefix,
                              const proxy::ProxyPolicy& policy) {
  if (handshakes_ >= limits_.max_handshakes) {
    ++stats_->refused_handshakes;
    if (!logged_full_) {
      logged_full_ = true;
      spdlog::warn("[{}] refused: {} proxy handshakes in progress on this listener, its cap",
                   log_prefix, handshakes_);
    }
    Refuse(std::move(client), std::move(log_prefix),
           std::to_string(handshakes_) + " handshakes in progress");
    return;
  }
  if (handshakes_ < limits_.max_handshakes / 2) logged_full_ = false;
  auto c = std::make_unique<Conn>();
  c->fd = std::move(client);
  c->handshake = std::make_unique<proxy::ProxyHandshake>(policy);
  c->log_prefix = std::move(log_prefix);
  Add(std::move(c));
}

void ProxyConnections::Refuse(UniqueFd client, std::string log_prefix, std::string reason) {
  if (busy_ >= limits_.max_busy) {
    spdlog::debug("[{}] closed at once: {}, and {} clients are being told so", log_prefix, reason,
                  busy_);
    return;  // `client` closes here
  }
  spdlog::debug("[{}] busy: {}", log_prefix, reason);
  auto c = std::make_unique<Conn>();
  c->fd = std::move(client);
  c->handshake = std::make_unique<proxy::ProxyHandshake>(
      proxy::ProxyHandshake::Busy("the listener is busy: " + reason));
  c->log_prefix = std::move(log_prefix);
  c->busy = true;
  Add(std::move(c));
}

void ProxyConnections::Add(std::unique_ptr<Conn> c) {
  uint64_t id = next_id_++;
  c->since = std::chrono::steady_clock::now();
  int fd = c->fd.get();
  ++(c->busy ? busy_ : handshakes_);
  conns_.emplace(id, std::move(c));
  loop_.Watch(fd, net::kReadable, [this, id](unsigned) { OnEvents(id); });
}

std::unique_ptr<ProxyConnections::Conn> ProxyConnections::Take(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return nullptr;
  std::unique_ptr<Conn> c = std::move(it->second);
  conns_.erase(it);
  loop_.Unwatch(c->fd.get());
  --(c->busy ? busy_ : handshakes_);
  return c;
}

bool ProxyConnections::Flush(Conn& c) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
    return false;
  }
  return true;
}

void ProxyConnections::OnEvents(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (c.draining) {
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        c.drained += static_cast<size_t>(n);
        if (c.drained > kDrainMaxBytes) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      break;  // EOF or an error
    }
    Drop(id);
    return;
  }
  if (!c.ready && !c.closing) {
    char buf[4096];
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      Drop(id);  // the client left before naming a target
      return;
    }
    if (n > 0) {
      switch (c.handshake->Feed(std::string_view(buf, static_cast<size_t>(n)))) {
        case proxy::ProxyHandshake::Step::kNeedMore:
          break;
        case proxy::ProxyHandshake::Step::kConnect:
          c.ready = true;
          break;
        case proxy::ProxyHandshake::Step::kClose:
          if (c.busy) {
            spdlog::debug("[{}] refused: {}", c.log_prefix, c.handshake->error());
          } else {
            spdlog::info("[{}] refused: {}", c.log_prefix, c.handshake->error());
          }
          c.closing = true;
          break;
      }
      c.out += c.handshake->TakeReply();
    }
  }
  if (!Flush(c)) {
    Drop(id);
    return;
  }
  if (!c.out.empty()) {
    loop_.SetInterest(c.fd.get(), net::kWritable);
    return;
  }
  if (c.closing) {
    ::shutdown(c.fd.get(), SHUT_WR);
    c.draining = true;
    loop_.SetInterest(c.fd.get(), net::kReadable);
    return;
  }
  if (c.ready) {
    auto owned = Take(id);
    exit_(std::move(owned->fd), std::move(owned->handshake), std::move(owned->log_prefix));
    return;
  }
  loop_.SetInterest(c.fd.get(), net::kReadable);
}

void ProxyConnections::Drop(uint64_t id) { (void)Take(id); }

void ProxyConnections::Expire(std::chrono::steady_clock::time_point now) {
  std::vector<uint64_t> old;
  for (const auto& [id, c] : conns_) {
    if (now - c->since >= (c->busy ? limits_.busy_timeout : limits_.handshake_timeout)) {
      old.push_back(id);
    }
  }
  for (uint64_t id : old) {
    std::unique_ptr<Conn> c = Take(id);
    if (c->busy || c->closing) continue;  // refused already, and counted
    ++stats_->handshake_timeouts;
    spdlog::info(
        "[{}] closed: no request within {} s", c->log_prefix,
        std::chrono::duration_cast<std::chrono::seconds>(limits_.handshake_timeout).count());
  }
}

void ProxyConnections::Clear() {
  for (auto& [id, c] : conns_) loop_.Unwatch(c->fd.get());
  conns_.clear();
  handshakes_ = 0;
  busy_ = 0;
}

}  // namespace tether::forward
