// Client connections of a proxy listener (-D, the server proxy) during their handshake:
// read what the client sends, answer the method selection and authentication, and once
// the client has named its target, hand the socket and the finished handshake to the
// listener's exit (an SSH channel for -D, a connection from the laptop for the server
// proxy). A handshake that takes longer than kHandshakeTimeout is closed. Loop thread
// only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/unique_fd.h"
#include "net/event_loop.h"
#include "proxy/handshake.h"

namespace tether::forward {

// A client that has not named its target by then is dropped (a port scanner, a stuck
// client); generous for a person typing into `nc`.
inline constexpr std::chrono::seconds kHandshakeTimeout{30};
// A refused client's bytes we read and drop before closing (see Conn::draining).
inline constexpr size_t kDrainMaxBytes = 256u << 10;

class ProxyConnections {
 public:
  // Takes a client whose handshake is done. The socket is non-blocking; what the client
  // sent after its request is in handshake->TakeUpstream().
  using Exit = std::function<void(UniqueFd client, std::unique_ptr<proxy::ProxyHandshake> handshake,
                                  std::string log_prefix)>;

  ProxyConnections(net::EventLoop& loop, proxy::ProxyPolicy policy, Exit exit)
      : loop_(loop), policy_(std::move(policy)), exit_(std::move(exit)) {}
  ~ProxyConnections() { Clear(); }
  ProxyConnections(const ProxyConnections&) = delete;
  ProxyConnections& operator=(const ProxyConnections&) = delete;

  void Accept(UniqueFd client, std::string log_prefix) {
    Accept(std::move(client), std::move(log_prefix), policy_);
  }
  // With a policy of its own for this client (the server proxy's owner, known by uid,
  // needs no token).
  void Accept(UniqueFd client, std::string log_prefix, const proxy::ProxyPolicy& policy);
  // Closes handshakes older than kHandshakeTimeout.
  void Expire(std::chrono::steady_clock::time_point now);
  void Clear();
  size_t size() const { return conns_.size(); }

 private:
  struct Conn {
    UniqueFd fd;
    std::unique_ptr<proxy::ProxyHandshake> handshake;
    std::string out;       // replies not yet written
    bool ready = false;    // the target is known: hand over once `out` is written
    bool closing = false;  // refused: close once `out` is written
    // Refused and answered: our side is shut; what the client still sends is read and
    // dropped until its EOF (bounded), so closing does not reset the connection and
    // destroy the answer before the client has read it.
    bool draining = false;
    size_t drained = 0;
    std::string log_prefix;
    std::chrono::steady_clock::time_point since;
  };
  void OnEvents(uint64_t id);
  // Writes what it can of c.out; false when the socket is broken.
  static bool Flush(Conn& c);
  void Drop(uint64_t id);

  net::EventLoop& loop_;
  proxy::ProxyPolicy policy_;
  Exit exit_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_id_ = 1;
};

}  // namespace tether::forward
