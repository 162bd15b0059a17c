// What every kind of forward (-L, -R, -D, the server proxy) offers the daemon: a spec,
// live counters, a place it listens, and a state for `status`. The daemon holds them in
// one list, adds and cancels them at runtime, and tells each one when the link goes
// down or comes back. What differs by kind is a virtual here, so the daemon never asks
// which class a forward is. Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <libssh/libssh.h>

#include "common/result.h"
#include "config/forward_spec.h"
#include "forward/forward_stats.h"
#include "forward/listener_limits.h"
#include "forward/pump_set.h"
#include "net/event_loop.h"

namespace tether::forward {

// "local", "remote" or "dynamic": the kind's name in `status` and in the control protocol.
const char* ForwardKindName(config::ForwardKind kind);

// Where a forward stands. A -L/-D forward listens (or waits for the link) from the start;
// a -R one asks the server to listen on every new session and retries a refusal.
enum class ForwardState { kWaitingForLink, kRequesting, kListening, kRetrying, kStopped };
// As `status` says it: "waiting for the link", "requesting", "listening", "retrying",
// "stopped".
const char* ToString(ForwardState state);

// What the daemon hands a forward when it starts it on the loop.
struct StartContext {
  net::EventLoop* loop = nullptr;
  PumpSet* pumps = nullptr;
  ssh_session session = nullptr;  // null while the link is down
  // How long a connection accepted while the link is down waits for it.
  std::chrono::milliseconds max_wait{30000};
  // Where a stream accepted on the laptop runs, when not on `session` (a lane).
  StreamPlacer placer;
  // What each listener may hold at once (tests make them small).
  ListenerLimits limits;
};

// Who may use a listener on the server that leaves from the laptop (the server proxy, a
// reverse dynamic forward); see forward/owner_check.h.
enum class Access {
  kNotApplicable,  // a forward of another kind
  kAnyone,         // --proxy-open: every account on the server
  kChecking,       // the owner check is starting: connections wait for it
  kOwner,          // the owner's processes alone, known by uid
  kToken,          // the server cannot say who connects: the daemon's user and token
  kNobody,         // the server cannot say who connects and there is no token: refused
};
// "anyone", "checking", "owner", "token", "nobody" ("" for kNotApplicable).
const char* ToString(Access access);

// The server proxy as `tether env` and `status` show it.
struct ServerProxyStatus {
  uint16_t port = 0;  // where it listens on the server (the one asked for until bound)
  bool open = false;  // no user and token asked of clients
  ForwardState state = ForwardState::kWaitingForLink;
  Access access = Access::kNotApplicable;
};

// Another account that holds the port a remote forward asked the server for.
struct PortSquatter {
  uint32_t uid = 0;
  std::string account;  // its name on the server; "" until known or when it has none
};

class Forward {
 public:
  virtual ~Forward() = default;
  Forward(const Forward&) = delete;
  Forward& operator=(const Forward&) = delete;

  // Starts it on the daemon's loop and the current session; once, before anything else.
  // Most forwards need only the session.
  virtual void Start(const StartContext& context) { SetSession(context.session); }
  // True for -L and -D: their streams start on the laptop, so lanes can carry them.
  virtual bool streams_from_laptop() const { return false; }
  // `status`'s kind: "local", "remote", "dynamic", or "proxy" for the server proxy.
  virtual const char* kind_name() const { return ForwardKindName(spec_.kind); }
  // Where its connections go, for `status`: the target, "socks" for a dynamic forward, or
  // for the server proxy how connections leave the laptop.
  virtual std::string target_description() const {
    return spec_.dynamic ? "socks" : spec_.target.ToString();
  }
  // Set for the server proxy (--proxy) only.
  virtual std::optional<ServerProxyStatus> server_proxy() const { return std::nullopt; }
  // Forwards the server listens for (-R): whether the server's forwarded-tcpip open for
  // address:port is one of ours, and serving the channel once accepted (ownership taken).
  virtual bool AcceptsServerChannel(const std::string& /*address*/, uint16_t /*port*/) const {
    return false;
  }
  virtual void ServeServerChannel(ssh_channel channel, const std::string& /*origin_host*/,
                                  uint16_t /*origin_port*/) {
    ssh_channel_free(channel);
  }
  // Calls `done` once with the server's answer to a -R request (the port it listens on, or
  // why it refused), at once with 0 for forwards that listen on the laptop.
  virtual void WhenAnswered(std::function<void(Result<uint16_t>)> done) { done(uint16_t{0}); }
  // The port the server listens on for it (a -R's; for -R 0 the one the server chose), 0
  // while the server has not said or for forwards that listen on the laptop.
  virtual uint16_t server_listen_port() const { return 0; }

  // The link went down (null) or came back. A forward keeps its local listeners either
  // way; a remote one asks the server to listen again on the new session.
  virtual void SetSession(ssh_session session) = 0;
  // Called every link tick: expire what waited too long, retry what failed.
  virtual void OnTick(std::chrono::steady_clock::time_point now) = 0;
  // Closes listeners (and, for a remote forward, asks the server to stop listening).
  // Connections already being served live on until they end.
  virtual void Stop() = 0;

  virtual ForwardState state() const = 0;
  // Why the last attempt failed ("" when fine).
  virtual std::string error() const { return ""; }
  // Who may connect, for listeners on the server that leave from the laptop.
  virtual Access access() const { return Access::kNotApplicable; }
  // Set while the server refuses a remote forward because another account holds its port.
  virtual std::optional<PortSquatter> squatter() const { return std::nullopt; }

  const config::ForwardSpec& spec() const { return spec_; }
  // Where it listens ("127.0.0.1:8000", a socket path, or "server:10808" for -R).
  const std::string& listen_address() const { return listen_address_; }
  // Shared with every pump this forward started, so a cancelled forward's last streams
  // still count somewhere safe.
  const std::shared_ptr<ForwardStats>& stats() const { return stats_; }
  // Updates the current rate in stats() from its byte counters; called every tick.
  void SampleRate(std::chrono::steady_clock::time_point now) { rate_.Sample(now, *stats_); }

 protected:
  Forward(config::ForwardSpec spec, std::string host_alias)
      : spec_(std::move(spec)),
        host_alias_(std::move(host_alias)),
        stats_(std::make_shared<ForwardStats>()) {}

  config::ForwardSpec spec_;
  std::string host_alias_;
  std::string listen_address_;
  std::shared_ptr<ForwardStats> stats_;
  RateMeter rate_;
};

}  // namespace tether::forward
