// A local forward (-L): listens on the laptop and, for each connection, opens a
// direct-tcpip (or direct-streamlocal) channel to the target through the server. A
// dynamic forward (-D) listens the same way and speaks SOCKS4/4a/5 and HTTP CONNECT to
// each client first: the target it names is opened through the server (names resolved
// there).
// Listeners are bound before the daemon goes to the background, so a port in use is
// reported to the user who ran `tether up`. Loop thread only after Start().
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "config/forward_spec.h"
#include "forward/forward.h"
#include "forward/proxy_connections.h"
#include "forward/pump_set.h"
#include "net/acceptor.h"
#include "net/event_loop.h"

namespace tether::forward {

class LocalForward : public Forward {
 public:
  // Binds the listener(s). Errors name the address and port.
  static Result<std::unique_ptr<LocalForward>> Bind(const config::ForwardSpec& spec,
                                                    std::string host_alias);
  ~LocalForward() override;

  // Starts accepting; each connection becomes a pump on the session in the pumps, unless
  // the placer takes it elsewhere. The session may be null (the link is down): connections
  // then wait, see SetSession. A connection waits at most `max_wait` for the link.
  void Start(const StartContext& context) override;
  bool streams_from_laptop() const override { return true; }
  void Stop() override;

  // The link went down (null) or came back: listeners stay open either way. While it is
  // down, accepted connections wait; when it is back, they are served in arrival order.
  void SetSession(ssh_session session) override;
  // Closes waiting connections older than the wait bound.
  void OnTick(std::chrono::steady_clock::time_point now) override;
  // Closes waiting connections older than `max_wait` (the link did not come back in
  // time for them). Returns how many were closed.
  size_t ExpireWaiting(std::chrono::steady_clock::time_point now,
                       std::chrono::milliseconds max_wait);
  size_t waiting() const { return waiting_.size(); }
  // Connections this listener holds: served, waiting for the link, in a handshake.
  size_t open_connections() const;
  ForwardState state() const override;

 private:
  LocalForward(config::ForwardSpec spec, std::string host_alias)
      : Forward(std::move(spec), std::move(host_alias)) {}
  void OnAccepted(UniqueFd conn);
  // A held connection (link down) has news: its client sent data or gave up.
  void OnWaitingEvent(int fd);
  void Serve(UniqueFd conn);
  // -D: a client named its target; open the channel and answer it when that is known.
  void ServeProxied(UniqueFd client, std::unique_ptr<proxy::ProxyHandshake> handshake,
                    std::string log_prefix);
  // Runs the stream where the placer puts it, or here.
  void Run(NewStream stream);

  struct Waiting {
    UniqueFd fd;
    std::chrono::steady_clock::time_point since;
  };

  std::vector<UniqueFd> listeners_;
  std::vector<std::unique_ptr<net::Acceptor>> acceptors_;  // one a listener, while started
  std::string unix_path_;                                  // removed on Stop
  std::chrono::milliseconds max_wait_{30000};
  ListenerLimits limits_;
  bool logged_full_ = false;  // "at its cap" logged since the count was last below half
  net::EventLoop* loop_ = nullptr;
  PumpSet* pumps_ = nullptr;
  StreamPlacer placer_;
  ssh_session session_ = nullptr;
  uint64_t next_conn_ = 1;
  std::vector<Waiting> waiting_;
  std::unique_ptr<ProxyConnections> proxied_;  // -D only
};

}  // namespace tether::forward
