// What every kind of forward (-L, -R, -D, the server proxy) offers the daemon: a spec,
// live counters, a place it listens, and a state for `status`. The daemon holds them in
// one list, adds and cancels them at runtime, and tells each one when the link goes
// down or comes back. Loop thread only.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <libssh/libssh.h>

#include "config/forward_spec.h"
#include "forward/forward_stats.h"

namespace tether::forward {

// "local", "remote" or "dynamic": the kind's name in `status` and in the control protocol.
const char* ForwardKindName(config::ForwardKind kind);

// Where a forward stands. A -L/-D forward listens (or waits for the link) from the start;
// a -R one asks the server to listen on every new session and retries a refusal.
enum class ForwardState { kWaitingForLink, kRequesting, kListening, kRetrying, kStopped };
// As `status` says it: "waiting for the link", "requesting", "listening", "retrying",
// "stopped".
const char* ToString(ForwardState state);

class Forward {
 public:
  virtual ~Forward() = default;
  Forward(const Forward&) = delete;
  Forward& operator=(const Forward&) = delete;

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
