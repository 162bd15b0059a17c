// The daemon's sessions (commands, shells, stdio forwards of ssh -S HOST.mux and tether
// exec/ssh) and the connections they run on: the main link first, then further
// connections opened when sshd's MaxSessions (10 by default) refuses one more. What each
// connection allows is learned from its refusals; a refused session waits, parked, for
// a connection with room. The main link's owner says when it comes and goes; the pool
// keeps the rest. Loop thread only.
#pragma once

#include <libssh/libssh.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "config/ssh_config.h"
#include "control/mux_server.h"
#include "daemon/connector.h"
#include "daemon/exec_session.h"
#include "forward/window_budget.h"
#include "net/event_loop.h"
#include "ssh/link.h"
#include "ssh/session.h"

namespace tether::daemon {

// Further connections a daemon opens for sessions past sshd's MaxSessions (10 by default):
// with these, 90 more commands at once. Few, so as not to trip MaxStartups.
inline constexpr size_t kMaxExtraLinks = 8;
// How soon sessions refused for MaxSessions are placed again when nothing else (a session
// ending, a connection coming up) has done it: a round trip or two on most links.
inline constexpr std::chrono::milliseconds kParkedRetry{100};
// An extra connection with no session for this long is closed.
inline constexpr std::chrono::seconds kExtraLinkIdle{60};

// The placement rules, pure. A connection as placement sees it: what we learned of its
// MaxSessions (unset: nothing yet) and the sessions it holds or is opening.
struct SessionRoom {
  std::optional<size_t> limit;
  size_t open = 0;
};
// The first connection with room for one more session, other than `avoid`; none if
// every one is full.
std::optional<size_t> FirstWithRoom(const std::vector<SessionRoom>& connections,
                                    std::optional<size_t> avoid = std::nullopt);
// sshd refused a session on a connection where `confirmed` other sessions are open
// (`asked`: counting opens still in flight) and `known` is what we knew of its limit.
// Unset: not MaxSessions but a policy (nothing else open or opening, no limit known), and
// the session fails. Else the connection's limit: the largest count seen, at least 1.
std::optional<size_t> LimitAfterRefusal(size_t confirmed, size_t asked,
                                        std::optional<size_t> known);

class SessionPool {
 public:
  using SessionEvents = control::MuxHost::SessionEvents;

  // Further connections dial `host` (see RedialHost). `loop`, and `budget` (the receive
  // windows of the sessions' channels draw on it), must outlive the pool.
  SessionPool(net::EventLoop& loop, config::HostConfig host, forward::WindowBudget& budget);
  // Waits for a connection attempt in flight; closes the sessions and connections.
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  // The main link came up on `main`; further connections fail a write that makes no
  // progress for `dead_after`.
  void Attach(ssh_session main, std::chrono::milliseconds dead_after);
  // The main link is lost (`why`): every session ends, the further connections close.
  void Detach(const std::string& why);
  // What a session started while the main link is down is told (after "the connection
  // to HOST is down; "): "tether is reconnecting" until said otherwise.
  void SetDownReason(std::string reason) { down_reason_ = std::move(reason); }

  // A new session, placed (or parked) on the next wake-up: the caller is still setting
  // up. While the main link is down it is refused then. `what` is logged.
  uint32_t Start(ExecRequest request, UniqueFd in, UniqueFd out, UniqueFd err, SessionEvents events,
                 const std::string& what);
  // The client of session `id` went away (see the .cc).
  void End(uint32_t id);
  // After every round of the loop: sessions advance, refusals are learned, the parked
  // placed; the further connections ask for writability as their output needs.
  void Service();
  void UpdateWriteInterest();
  // Every tick: further connections idle for kExtraLinkIdle close.
  void Check(std::chrono::steady_clock::time_point now);
  // SIGWINCH: every session with a pty checks its terminal's size.
  void WindowChanged();
  // The daemon stops: every session ends with `why`.
  void AbortAll(const std::string& why);

  // The resident runner (daemon/fast_exec.h) listens at `socket` on the server ("" for
  // none): the commands it can take (ForRunner) go by it from now on.
  void SetRunner(std::string socket) { runner_socket_ = std::move(socket); }
  // Told when the runner could not take a command (it then ran as a session) or went away
  // mid-command.
  void OnRunnerTrouble(std::function<void(const std::string& why)> f) {
    runner_trouble_ = std::move(f);
  }
  // Commands the runner started, and those meant for it that ran as sessions.
  uint64_t by_runner() const { return by_runner_; }
  uint64_t runner_fallbacks() const { return runner_fallbacks_; }
  // Whether `request` can go by the runner: a command (not a shell, a subsystem or ssh -W)
  // without a pty, not forced to a session, whose variables the server is known to take
  // or refuse (AcceptEnv, learned from the sessions' env requests). Refused ones are
  // dropped from it, as the server would.
  bool ForRunner(ExecRequest& request) const;

  size_t waiting() const;
  size_t live() const { return sessions_.size() - waiting(); }
  size_t extra_links() const { return extra_links_.size(); }

 private:
  // The first connection with room for one more session (its learned MaxSessions), other
  // than `avoid`; null if none.
  ssh_session PickLink(ssh_session avoid = nullptr);
  // Gives parked sessions a connection, asking for a new one when none has room.
  void PlaceParked();
  // Erases finished sessions on the next round of the loop, when none of their calls can
  // be on the stack (see End).
  void ReapSessionsSoon();
  void OnExtraLink(Result<std::unique_ptr<ssh::Session>> result);
  // After an extra link drained: the extra links that ended are dropped, with their
  // sessions.
  void OnExtraLinkInput();
  void DropExtraLinks(const std::string& why);

  net::EventLoop& loop_;
  const config::HostConfig host_;
  forward::WindowBudget& budget_;
  ssh_session main_ = nullptr;  // null while the main link is down
  std::string down_reason_ = "tether is reconnecting";
  std::chrono::milliseconds dead_after_{0};
  // Sessions are erased only where none of their calls is on the stack: by Service right
  // after its own call returns, or by ReapSessionsSoon's timer.
  std::map<uint32_t, std::unique_ptr<ExecSession>> sessions_;
  bool reap_scheduled_ = false;
  uint32_t next_session_ = 1;
  // Further connections for sessions (see kMaxExtraLinks), and what we learned of each
  // connection's MaxSessions (the number open when sshd refused one more).
  struct ExtraLink {
    std::unique_ptr<ssh::Link> link;
    std::chrono::steady_clock::time_point idle_since;
  };
  std::vector<ExtraLink> extra_links_;
  std::unique_ptr<Connector> extra_connector_;
  std::map<ssh_session, size_t> session_limit_;
  // Parked sessions and the connection that last refused them for MaxSessions.
  std::map<uint32_t, ssh_session> refused_on_;
  bool place_retry_armed_ = false;

  std::string runner_socket_;
  std::function<void(const std::string&)> runner_trouble_;
  uint64_t by_runner_ = 0, runner_fallbacks_ = 0;
  // What the server's AcceptEnv did with each variable name a session sent.
  std::map<std::string, bool> accepted_env_;
};

}  // namespace tether::daemon
