// The session's global requests, one at a time. libssh 0.10 keeps a single reply slot
// per session (DESIGN.md): a tcpip-forward sent while a keepalive@openssh.com is in
// flight would take the keepalive's answer as its own. So every global request of the
// daemon goes through here, in order:
//
//  - keepalives go out only when nothing else is in flight (a request in flight is a
//    probe too: its reply is a received byte);
//  - before a queued request is sent, a keepalive that may be in flight is collected.
//    libssh's ssh_send_keepalive does not say whether its reply came within the call, so
//    the collection uses ssh_channel_cancel_forward, which does: while a reply is pending
//    it only collects (SSH_AGAIN until it is in), and if the slot was already free it
//    sends a harmless cancel for a forward that does not exist, whose refusal frees it.
//    After the first answer other than SSH_AGAIN the slot is free either way.
//  - tcpip-forward / cancel-tcpip-forward are sent, then collected by calling the same
//    function again after each session wake-up, until it answers.
//  - "any port" (port 0) is never sent as such: libssh reads the port sshd chose from the
//    last packet it handled, and several packets come in one read, so under traffic the
//    answer is lost (an error with no reason while sshd listens, orphaned) or another
//    packet's bytes. The port is chosen here instead, at random above the kernel's
//    ephemeral range, and one the server refuses (taken) is tried again with another.
//
// Loop thread only, like the session.
#pragma once

#include <libssh/libssh.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <random>
#include <string>

#include "common/result.h"

namespace tether::ssh {

class GlobalRequests {
 public:
  using RequestId = uint64_t;
  // The server's answer: the port it listens on (for a cancel, the port cancelled).
  using Done = std::function<void(Result<uint16_t>)>;

  GlobalRequests() = default;
  GlobalRequests(const GlobalRequests&) = delete;
  GlobalRequests& operator=(const GlobalRequests&) = delete;

  // A new session (or none). Requests queued for the old one are dropped without an
  // answer: their owners are told of the new session and ask again.
  void Attach(ssh_session session);

  // Asks the server to listen on address:port for us. Port 0 is any free port: up to
  // kAnyPortTries random ones are asked in turn (a refusal for every port, sshd's policy, costs
  // that many round trips before it is said), and the answer is the one it took.
  RequestId Listen(const std::string& address, uint16_t port, Done done);
  static constexpr int kAnyPortTries = 12;
  // Asks the server to stop listening on address:port.
  RequestId CancelListen(const std::string& address, uint16_t port, Done done);
  // The requester is gone: its answer is still collected (the slot needs it) but not
  // delivered.
  void Forget(RequestId id);

  // Sends one keepalive@openssh.com (want-reply) if nothing else is in flight.
  void SendKeepalive();
  // Collects answers and sends what is queued. Call after every session wake-up.
  void Poll();

  bool idle() const { return slot_ == Slot::kFree && queue_.empty(); }
  // Forward requests and cancels not answered yet (keepalives aside).
  size_t pending() const { return queue_.size(); }

 private:
  enum class Slot { kFree, kKeepalive, kFlushing, kRequest };
  struct Request {
    RequestId id;
    bool cancel;
    std::string address;
    uint16_t port;       // for any port, this try's
    int any_port_tries;  // > 0: any port was asked for, this many tries left
    Done done;
  };
  // Calls libssh for the front request (sending it, or collecting its answer).
  int CallFront();
  void Deliver(Result<uint16_t> result);
  uint16_t AnyPort();

  ssh_session session_ = nullptr;
  Slot slot_ = Slot::kFree;
  std::deque<Request> queue_;
  RequestId next_id_ = 1;
  std::mt19937 random_{std::random_device{}()};
};

}  // namespace tether::ssh
