// Client connections of a proxy listener (-D, the server proxy) during their handshake:
// read what the client sends, answer the method selection and authentication, and once
// the client has named its target, hand the socket and the finished handshake to the
// listener's exit (an SSH channel for -D, a connection from the laptop for the server
// proxy). Bounded (forward/listener_limits.h): a handshake that takes longer than the
// handshake timeout is closed; one over the cap of handshakes in progress, or one the
// listener refuses (Refuse), is answered "busy" in its own protocol and closed; past
// the cap on those too, it is closed at once. Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/unique_fd.h"
#include "forward/forward_stats.h"
#include "forward/listener_limits.h"
#include "net/event_loop.h"
#include "proxy/handshake.h"

namespace tether::forward {

// A refused client's bytes we read and drop before closing (see Conn::draining).
inline constexpr size_t kDrainMaxBytes = 256u << 10;

class ProxyConnections {
 public:
  // Takes a client whose handshake is done. The socket is non-blocking; what the client
  // sent after its request is in handshake->TakeUpstream().
  using Exit = std::function<void(UniqueFd client, std::unique_ptr<proxy::ProxyHandshake> handshake,
                                  std::string log_prefix)>;

  // Refusals are counted in `stats`.
  ProxyConnections(net::EventLoop& loop, proxy::ProxyPolicy policy, Exit exit,
                   std::shared_ptr<ForwardStats> stats, ListenerLimits limits = {})
      : loop_(loop),
        policy_(std::move(policy)),
        exit_(std::move(exit)),
        stats_(std::move(stats)),
        limits_(limits) {}
  ~ProxyConnections() { Clear(); }
  ProxyConnections(const ProxyConnections&) = delete;
  ProxyConnections& operator=(const ProxyConnections&) = delete;

  void Accept(UniqueFd client, std::string log_prefix) {
    Accept(std::move(client), std::move(log_prefix), policy_);
  }
  // With a policy of its own for this client (the server proxy's owner, known by uid,
  // needs no token).
  void Accept(UniqueFd client, std::string log_prefix, const proxy::ProxyPolicy& policy);
  // Answers the client "busy" (the listener is at a cap: `reason`, for the log) once it
  // has named its target, or closes it at once when too many are being told so already.
  // The caller counts the refusal.
  void Refuse(UniqueFd client, std::string log_prefix, std::string reason);
  // Closes handshakes older than the handshake timeout (busy ones: the busy timeout).
  void Expire(std::chrono::steady_clock::time_point now);
  void Clear();
  // Every client held: in a handshake, being refused, or being told busy.
  size_t size() const { return conns_.size(); }
  size_t handshakes() const { return handshakes_; }
  // Whether Refuse would answer (rather than close at once).
  bool can_answer_busy() const { return busy_ < limits_.max_busy; }

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
    bool busy = false;  // over a cap (Refuse, or too many handshakes): counted in busy_
    std::string log_prefix;
    std::chrono::steady_clock::time_point since;
  };
  void OnEvents(uint64_t id);
  // Writes what it can of c.out; false when the socket is broken.
  static bool Flush(Conn& c);
  void Drop(uint64_t id);
  void Add(std::unique_ptr<Conn> c);
  // Takes the client out of the set (handed on or dropped) and out of its count.
  std::unique_ptr<Conn> Take(uint64_t id);

  net::EventLoop& loop_;
  proxy::ProxyPolicy policy_;
  Exit exit_;
  std::shared_ptr<ForwardStats> stats_;
  ListenerLimits limits_;
  size_t handshakes_ = 0;  // conns_ that are not busy
  size_t busy_ = 0;
  bool logged_full_ = false;  // "at its cap" logged since the count was last below half
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t next_id_ = 1;
};

}  // namespace tether::forward
