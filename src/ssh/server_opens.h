// The channels the server opens to us: forwarded-tcpip, one for each connection a remote
// forward's listener accepted on the server (RFC 4254 7.2). libssh hands them over in its
// message callback, from inside its own poll, where nothing may be served: the opens that
// `wanted` claims are accepted and queued, the rest refused (agent, X11, anything we did
// not ask for), and the owner takes the queue once the poll is over.
//
// Loop thread only, like the session.
#pragma once

#include <libssh/libssh.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tether::ssh {

class ServerOpens {
 public:
  struct Open {
    ssh_channel channel;  // accepted; whoever takes the open owns it
    std::string address;  // where the server accepted it (the forward's listen address)
    uint16_t port;
    std::string origin_host;
    uint16_t origin_port;
  };
  // Whether an open for address:port is ours. Runs inside libssh: it may only look.
  using Wanted = std::function<bool(const std::string& address, uint16_t port)>;

  // `log_prefix` names the refusals in the log (the host's alias).
  ServerOpens(Wanted wanted, std::string log_prefix);
  // Frees the opens not taken: before their session goes.
  ~ServerOpens();
  ServerOpens(const ServerOpens&) = delete;
  ServerOpens& operator=(const ServerOpens&) = delete;

  // Takes `session`'s channel opens from now on (its message callback). Null: the session
  // is going, and the opens not taken are freed while it still exists.
  void Attach(ssh_session session);
  // The opens accepted since the last call.
  std::vector<Open> Take();
  // Frees an open's channel unserved (its forward was cancelled meanwhile).
  static void Drop(Open& open);

 private:
  static int OnMessage(ssh_session session, ssh_message message, void* self);
  void Clear();

  Wanted wanted_;
  const std::string log_prefix_;
  std::vector<Open> queue_;
};

}  // namespace tether::ssh
