#include "forward/socket_relay.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace tether::forward {
namespace {

bool WouldBlock() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

}  // namespace

void RelaySet::Start(UniqueFd a, UniqueFd b, std::string to_a, std::string to_b,
                     std::string log_prefix) {
  uint64_t id = next_id_++;
  auto r = std::make_unique<Relay>();
  r->side[0].fd = std::move(a);
  r->side[1].fd = std::move(b);
  r->side[0].pending = std::move(to_a);
  r->side[1].pending = std::move(to_b);
  r->log_prefix = std::move(log_prefix);
  for (int i = 0; i < 2; ++i) {
    loop_.Watch(r->side[i].fd.get(), net::kNone, [this, id](unsigned) { OnEvents(id); });
  }
  relays_.emplace(id, std::move(r));
  OnEvents(id);
}

void RelaySet::OnEvents(uint64_t id) {
  auto it = relays_.find(id);
  if (it == relays_.end()) return;
  Relay& r = *it->second;
  // Bounded rounds: one busy relay must not starve the loop.
  for (int round = 0; round < 4; ++round) {
    bool progress = false;
    for (int i = 0; i < 2; ++i) {
      Side& from = r.side[i];
      Side& to = r.side[1 - i];
      // Write what is pending toward `to`.
      while (!to.pending.empty()) {
        ssize_t n =
            ::send(to.fd.get(), to.pending.data(), to.pending.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          to.pending.erase(0, static_cast<size_t>(n));
          progress = true;
          continue;
        }
        if (n < 0 && WouldBlock()) break;
        spdlog::debug("[{}] closed: {}", r.log_prefix, std::strerror(errno));
        Drop(id);
        return;
      }
      // Read `from` only when `to` has taken everything.
      if (to.pending.empty() && !from.read_eof) {
        char buf[kRelayChunk];
        ssize_t n = ::recv(from.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          to.pending.assign(buf, static_cast<size_t>(n));
          progress = true;
        } else if (n == 0) {
          from.read_eof = true;
          progress = true;
        } else if (!WouldBlock()) {
          spdlog::debug("[{}] closed: {}", r.log_prefix, std::strerror(errno));
          Drop(id);
          return;
        }
      }
      if (from.read_eof && to.pending.empty() && !to.shut) {
        ::shutdown(to.fd.get(), SHUT_WR);
        to.shut = true;
      }
    }
    if (r.side[0].read_eof && r.side[1].read_eof && r.side[0].pending.empty() &&
        r.side[1].pending.empty()) {
      Drop(id);
      return;
    }
    if (!progress) break;
  }
  Update(id, r);
}

void RelaySet::Update(uint64_t, Relay& r) {
  for (int i = 0; i < 2; ++i) {
    Side& s = r.side[i];
    const Side& other = r.side[1 - i];
    unsigned want = net::kNone;
    if (!s.read_eof && other.pending.empty()) want |= net::kReadable;
    if (!s.pending.empty()) want |= net::kWritable;
    loop_.SetInterest(s.fd.get(), want);
  }
}

void RelaySet::Drop(uint64_t id) {
  auto it = relays_.find(id);
  if (it == relays_.end()) return;
  for (auto& s : it->second->side) loop_.Unwatch(s.fd.get());
  relays_.erase(it);
}

void RelaySet::Clear() {
  for (auto& [id, r] : relays_) {
    for (auto& s : r->side) loop_.Unwatch(s.fd.get());
  }
  relays_.clear();
}

}  // namespace tether::forward
