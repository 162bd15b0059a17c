#include "ssh/global_requests.h"

#include <libssh/server.h>  // ssh_send_keepalive lives here, though clients use it

#include <string>

namespace tether::ssh {
namespace {

// Enough answers per Poll for a burst of forwards; the rest wait for the next wake-up.
constexpr int kMaxStepsPerPoll = 16;
// Where a port of "any port" is drawn from: above Linux's default ip_local_port_range
// (32768-60999), so never the port of one of the server's outgoing connections on one of
// localhost's two addresses (sshd says yes when it can listen on either), and above where
// services usually listen.
constexpr uint16_t kAnyPortFirst = 61000;
constexpr uint16_t kAnyPortLast = 65535;

}  // namespace

void GlobalRequests::Attach(ssh_session session) {
  session_ = session;
  slot_ = Slot::kFree;
  queue_.clear();
}

GlobalRequests::RequestId GlobalRequests::Listen(const std::string& address, uint16_t port,
                                                 Done done) {
  RequestId id = next_id_++;
  if (port == 0) {
    queue_.push_back(Request{id, false, address, AnyPort(), kAnyPortTries, std::move(done)});
  } else {
    queue_.push_back(Request{id, false, address, port, 0, std::move(done)});
  }
  return id;
}

GlobalRequests::RequestId GlobalRequests::CancelListen(const std::string& address, uint16_t port,
                                                       Done done) {
  RequestId id = next_id_++;
  queue_.push_back(Request{id, true, address, port, 0, std::move(done)});
  return id;
}

uint16_t GlobalRequests::AnyPort() {
  return static_cast<uint16_t>(
      std::uniform_int_distribution<int>(kAnyPortFirst, kAnyPortLast)(random_));
}

void GlobalRequests::Forget(RequestId id) {
  for (auto& r : queue_) {
    if (r.id == id) r.done = nullptr;
  }
}

void GlobalRequests::SendKeepalive() {
  if (session_ == nullptr || !queue_.empty()) return;
  switch (slot_) {
    case Slot::kFree:
      ssh_send_keepalive(session_);
      slot_ = Slot::kKeepalive;
      break;
    case Slot::kKeepalive:
      // The first call collects the previous probe's answer (or, if it came within
      // the call that sent it, sends a new one); the second makes sure one is in flight.
      ssh_send_keepalive(session_);
      ssh_send_keepalive(session_);
      break;
    case Slot::kFlushing:
    case Slot::kRequest:
      break;  // an answer is awaited already
  }
}

int GlobalRequests::CallFront() {
  const Request& r = queue_.front();
  const char* address = r.address.c_str();
  if (r.cancel) return ssh_channel_cancel_forward(session_, address, r.port);
  return ssh_channel_listen_forward(session_, address, r.port, nullptr);
}

void GlobalRequests::Deliver(Result<uint16_t> result) {
  Request r = std::move(queue_.front());
  queue_.pop_front();
  slot_ = Slot::kFree;
  if (r.done) r.done(std::move(result));
}

void GlobalRequests::Poll() {
  if (session_ == nullptr) return;
  for (int step = 0; step < kMaxStepsPerPoll && !queue_.empty(); ++step) {
    if (slot_ == Slot::kKeepalive) slot_ = Slot::kFlushing;
    if (slot_ == Slot::kFlushing) {
      int rc = ssh_channel_cancel_forward(session_, "", 0);
      if (rc == SSH_AGAIN) return;
      slot_ = Slot::kFree;
      continue;
    }
    // kFree sends the front request; kRequest collects its answer.
    int rc = CallFront();
    if (rc == SSH_AGAIN) {
      slot_ = Slot::kRequest;
      return;
    }
    slot_ = Slot::kFree;
    Request& r = queue_.front();
    if (rc == SSH_OK) {
      Deliver(r.port);
      continue;
    }
    const bool denied = ssh_get_error_code(session_) == SSH_REQUEST_DENIED;
    if (denied && r.any_port_tries > 1) {
      --r.any_port_tries;  // taken on the server, most likely: another one
      r.port = AnyPort();
      continue;
    }
    std::string what = r.cancel ? "cancel-tcpip-forward" : "tcpip-forward";
    std::string where = (r.address.empty() ? std::string("*") : r.address) + ":" +
                        (r.any_port_tries > 0 ? "0 (" + std::to_string(kAnyPortTries) +
                                                    " free-looking ports asked for)"
                                              : std::to_string(r.port));
    Deliver(MakeError("forward", denied ? "the server refused " + what + " for " + where
                                        : what + ": " + ssh_get_error(session_)));
  }
}

}  // namespace tether::ssh
