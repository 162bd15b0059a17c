// Relays between two local sockets (the server proxy's client side, on a socketpair, and
// its connection out of the laptop): both ways, with backpressure (a side is read only
// while the other has taken what was read before) and half-close. Loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/unique_fd.h"
#include "net/event_loop.h"

namespace tether::forward {

// Read size per wake-up and side.
inline constexpr size_t kRelayChunk = 64u << 10;

class RelaySet {
 public:
  explicit RelaySet(net::EventLoop& loop) : loop_(loop) {}
  ~RelaySet() { Clear(); }
  RelaySet(const RelaySet&) = delete;
  RelaySet& operator=(const RelaySet&) = delete;

  // Relays between `a` and `b` (non-blocking), writing `to_a` / `to_b` first.
  void Start(UniqueFd a, UniqueFd b, std::string to_a, std::string to_b, std::string log_prefix);
  void Clear();
  size_t size() const { return relays_.size(); }

 private:
  struct Side {
    UniqueFd fd;
    std::string pending;    // read from the other side, not yet written here
    bool read_eof = false;  // this side sent EOF
    bool shut = false;      // we passed the other side's EOF on (SHUT_WR)
  };
  struct Relay {
    Side side[2];
    std::string log_prefix;
  };
  void OnEvents(uint64_t id);
  void Update(uint64_t id, Relay& r);
  void Drop(uint64_t id);

  net::EventLoop& loop_;
  std::unordered_map<uint64_t, std::unique_ptr<Relay>> relays_;
  uint64_t next_id_ = 1;
};

}  // namespace tether::forward
