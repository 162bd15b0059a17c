#include "forward/proxy_connections.h"

#include <sys/socket.h>

#include <cerrno>
#include <vector>

#include "common/log.h"

namespace tether::forward {

void ProxyConnections::Accept(UniqueFd client, std::string log_prefix,
                              const proxy::ProxyPolicy& policy) {
  uint64_t id = next_id_++;
  auto c = std::make_unique<Conn>();
  c->fd = std::move(client);
  c->handshake = std::make_unique<proxy::ProxyHandshake>(policy);
  c->log_prefix = std::move(log_prefix);
  c->since = std::chrono::steady_clock::now();
  int fd = c->fd.get();
  conns_.emplace(id, std::move(c));
  loop_.Watch(fd, net::kReadable, [this, id](unsigned) { OnEvents(id); });
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
          spdlog::info("[{}] refused: {}", c.log_prefix, c.handshake->error());
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
    auto owned = std::move(it->second);
    conns_.erase(it);
    loop_.Unwatch(owned->fd.get());
    exit_(std::move(owned->fd), std::move(owned->handshake), std::move(owned->log_prefix));
    return;
  }
  loop_.SetInterest(c.fd.get(), net::kReadable);
}

void ProxyConnections::Drop(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  loop_.Unwatch(it->second->fd.get());
  conns_.erase(it);
}

void ProxyConnections::Expire(std::chrono::steady_clock::time_point now) {
  std::vector<uint64_t> old;
  for (const auto& [id, c] : conns_) {
    if (now - c->since >= kHandshakeTimeout) old.push_back(id);
  }
  for (uint64_t id : old) {
    spdlog::info("[{}] closed: no request within {} s", conns_[id]->log_prefix,
                 kHandshakeTimeout.count());
    Drop(id);
  }
}

void ProxyConnections::Clear() {
  for (auto& [id, c] : conns_) loop_.Unwatch(c->fd.get());
  conns_.clear();
}

}  // namespace tether::forward
