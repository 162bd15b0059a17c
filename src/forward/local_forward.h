// A local forward (-L): listens on the laptop and, for each connection, opens a
// direct-tcpip (or direct-streamlocal) channel to the target through the server.
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
#include "forward/forward_stats.h"
#include "forward/pump_set.h"
#include "net/event_loop.h"

namespace tether::forward {

class LocalForward {
 public:
  // Binds the listener(s). Errors name the address and port.
  static Result<std::unique_ptr<LocalForward>> Bind(const config::ForwardSpec& spec,
                                                    std::string host_alias);
  ~LocalForward();
  LocalForward(const LocalForward&) = delete;
  LocalForward& operator=(const LocalForward&) = delete;

  // Starts accepting; each connection becomes a pump on `session` in `pumps`.
  // `session` may be null (the link is down): connections then wait, see SetSession.
  void Start(net::EventLoop& loop, PumpSet& pumps, ssh_session session);
  void Stop();

  // The link went down (null) or came back: listeners stay open either way. While it is
  // down, accepted connections wait; when it is back, they are served in arrival order.
  void SetSession(ssh_session session);
  // Closes waiting connections older than `max_wait` (the link did not come back in
  // time for them). Returns how many were closed.
  size_t ExpireWaiting(std::chrono::steady_clock::time_point now,
                       std::chrono::milliseconds max_wait);
  size_t waiting() const { return waiting_.size(); }

  const config::ForwardSpec& spec() const { return spec_; }
  const ForwardStats& stats() const { return stats_; }
  // Where it actually listens ("127.0.0.1:8000", or the socket path).
  const std::string& listen_address() const { return listen_address_; }

 private:
  LocalForward(config::ForwardSpec spec, std::string host_alias)
      : spec_(std::move(spec)), host_alias_(std::move(host_alias)) {}
  void OnAcceptable(int listen_fd);
  void Serve(UniqueFd conn);

  struct Waiting {
    UniqueFd fd;
    std::chrono::steady_clock::time_point since;
  };

  config::ForwardSpec spec_;
  std::string host_alias_;
  std::string listen_address_;
  std::vector<UniqueFd> listeners_;
  std::string unix_path_;  // removed on Stop
  ForwardStats stats_;
  net::EventLoop* loop_ = nullptr;
  PumpSet* pumps_ = nullptr;
  ssh_session session_ = nullptr;
  uint64_t next_conn_ = 1;
  std::vector<Waiting> waiting_;
};

}  // namespace tether::forward
