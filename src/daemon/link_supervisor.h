// The life of a daemon's main link: whether it is alive (the keepalive, a busy server's
// grace, sleep and stops seen from two clocks), and, once it is lost, getting it back
// (backoff, a TCP probe of the path, the reconnect). What the link carries (forwards,
// sessions, lanes) is the owner's: the supervisor tells it when the link comes up and when
// it is lost, and asks it only what a keepalive needs of a live link. Time, timers and
// dialling come through seams (Clock, Dialer), so the policy is tested against fakes
// (tests/unit/daemon/link_supervisor_test.cc) as well as a real sshd.
//
// Loop thread only: every call, and every callback of the seams.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"
#include "config/ssh_config.h"
#include "daemon/backoff.h"
#include "daemon/keepalive.h"
#include "daemon/link_state.h"
#include "net/event_loop.h"
#include "ssh/session.h"

namespace tether::daemon {

// While the link is down, the path to the server is probed with a TCP connect this often
// (and each probe gives up after as long): when one gets through, the reconnect starts at
// once on that very connection instead of at the next backoff step, so a forward serves
// again within about a second of the network's return, whatever the outage's length. The
// probe is not closed and dialled again: OpenSSH 9.8+ penalises a connection that closes
// without authenticating (PerSourcePenalties), so the probe that finds sshd logs in.
inline constexpr std::chrono::milliseconds kReachabilityProbe{1000};
// When the keepalive finds the server silent but its TCP stack still acknowledges what we
// send, sshd is busy, not gone (measured: sshd with 1000 channels whose readers stall
// answers nothing for many seconds): the link is kept this much longer before it is
// called dead. A dead path gets no acknowledgments and is dropped as before.
inline constexpr std::chrono::seconds kBusyServerGrace{60};
// Ticks further apart than this, on either clock, mean we were not running (asleep,
// stopped, starved): the silence seen meanwhile says nothing about the link.
inline constexpr std::chrono::seconds kTickGap{2};

class LinkSupervisor {
 public:
  // Time as the supervisor sees it, and its timers.
  class Clock {
   public:
    using TimerId = uint64_t;
    virtual ~Clock() = default;
    // The monotonic clock: stands still while the machine sleeps.
    virtual std::chrono::steady_clock::time_point Now() = 0;
    // Time since boot, counting sleep (CLOCK_BOOTTIME).
    virtual std::chrono::nanoseconds BootTime() = 0;
    // Runs `fn` once after `delay`, from the loop (never inside this call).
    virtual TimerId After(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
    virtual void Cancel(TimerId id) = 0;
  };

  // How the host is reached again. Each callback runs later on the loop thread, never
  // inside the call that started it.
  class Dialer {
   public:
    using Dialed = std::function<void(Result<std::unique_ptr<ssh::Session>>)>;
    using Probed = std::function<void(Result<UniqueFd>)>;
    virtual ~Dialer() = default;
    // Logs in to the host again: on `first_hop` if given (a connected socket to the first
    // hop), else dialling it; asking `prompter` (from the dialling thread) when the server
    // wants an answer, nobody when null. At most one attempt at a time; a call while one
    // runs is ignored.
    virtual void Dial(UniqueFd first_hop, ssh::Prompter* prompter, Dialed done) = 0;
    virtual bool dialing() const = 0;
    // A TCP connect to the first hop (the first jump host, if any), given up after
    // `within`.
    virtual void Probe(std::chrono::milliseconds within, Probed done) = 0;
  };

  // What the supervisor tells the link's owner, and asks it of the link while it is up.
  class Owner {
   public:
    virtual ~Owner() = default;
    // A login succeeded: put `session` on the loop as the link and serve on it; a blocking
    // write into it must fail within `dead_after`. An error counts as a failed attempt.
    virtual Status LinkUp(std::unique_ptr<ssh::Session> session,
                          std::chrono::milliseconds dead_after) = 0;
    // The link is lost (`why`): drop it and what ran on it. The supervisor reconnects.
    virtual void LinkLost(const std::string& why) = 0;
    // Of the link that is up (between LinkUp and LinkLost): bytes read from the server
    // since it came up; one keepalive@openssh.com (want-reply) sent; whether the server's
    // TCP acknowledges what was sent within `within` (nullopt: cannot tell).
    virtual uint64_t LinkBytesIn() const = 0;
    virtual void SendKeepalive() = 0;
    virtual std::optional<bool> PeerAcknowledges(std::chrono::milliseconds within) = 0;
    // A reconnect found that the server wants what only a person can give (`why`): the
    // link stays down, not retried, until Login().
    virtual void NeedsLogin(const std::string& why) = 0;
  };
  // How a login asked for by a person ended: Ok once the link is up.
  using LoginDone = std::function<void(Status)>;

  // ServerAliveInterval and ServerAliveCountMax of `host` set the keepalive; its alias
  // names the log lines. `clock`, `dialer` and `owner` must outlive the supervisor, and
  // the dialer's callbacks must not run once it is gone.
  LinkSupervisor(const config::HostConfig& host, Clock& clock, Dialer& dialer, Owner& owner);
  ~LinkSupervisor();
  LinkSupervisor(const LinkSupervisor&) = delete;
  LinkSupervisor& operator=(const LinkSupervisor&) = delete;

  // Hands the first session (from `tether up`) to the owner as the link and starts the
  // clocks. Fails as the owner's LinkUp does.
  Status Start(std::unique_ptr<ssh::Session> session);
  // Every kLinkTick: a sleep or a stop is noticed, the keepalive judged, the path probed
  // while the link is down.
  void Tick();
  // The link drained what arrived: any byte is life, and timed here rather than on the
  // next tick, so a keepalive's round trip is measured to the wake-up.
  void OnInput();
  // The link ended (EOF, an error): the owner is told, and the reconnect scheduled.
  // Nothing while the link is down.
  void Lost(const std::string& why);
  // A person is there to answer (`tether login`): log in now, asking `prompter`, which
  // must outlive the attempt. An attempt in flight is let finish first; `done` runs on the
  // loop thread, never inside this call: Ok when the link is up (already, or now).
  void Login(ssh::Prompter& prompter, LoginDone done);
  bool logging_in() const { return login_prompter_ != nullptr || login_dialing_; }

  bool up() const { return keepalive_.has_value(); }
  LinkState state() const { return state_; }
  // The last failure: why the link was lost or the last reconnect failed.
  const std::string& last_error() const { return last_error_; }
  int reconnects() const { return reconnects_; }
  std::optional<std::chrono::milliseconds> rtt() const;
  // When a silent link counts as dead: the keepalive's verdict, or what it will be.
  std::chrono::milliseconds DeadAfter() const;

 private:
  Status Attach(std::unique_ptr<ssh::Session> session);
  void ScheduleReconnect();
  // Starts a reconnect now; `first_hop` (optional): the probe's connection, to log in on.
  void Redial(UniqueFd first_hop = {});
  void OnDialed(Result<std::unique_ptr<ssh::Session>> result);
  // Dials for the login waiting in login_prompter_.
  void StartLogin();
  void EndLogin(Status result);
  // Any byte from the server is life: the keepalive hears it and the server is not busy.
  void NoteBytesReceived(std::chrono::steady_clock::time_point now);
  // The keepalive's verdict on the live link, acted on.
  void JudgeKeepalive(std::chrono::steady_clock::time_point now);
  // While the link is down: a TCP probe of the first hop (see kReachabilityProbe).
  void ProbeReachability(std::chrono::steady_clock::time_point now);

  const std::string alias_;
  const std::chrono::milliseconds keepalive_interval_;
  const int keepalive_count_max_;
  Clock& clock_;
  Dialer& dialer_;
  Owner& owner_;

  LinkState state_ = LinkState::kUp;
  std::string last_error_;
  int reconnects_ = 0;
  // Set while the link is up.
  std::optional<Keepalive> keepalive_;
  // Since when the server has been silent while its TCP stack acknowledges (see
  // kBusyServerGrace); unset while it answers.
  std::optional<std::chrono::steady_clock::time_point> server_busy_since_;
  uint64_t last_in_bytes_ = 0;
  Backoff backoff_;
  Clock::TimerId reconnect_timer_ = 0;
  // Probing applies after network failures, not after auth or host-key ones (a working
  // server would be hammered for nothing).
  bool probe_path_ = true;
  bool probe_in_flight_ = false;
  // A person's login: waiting for the attempt in flight (login_prompter_ set), or dialling.
  ssh::Prompter* login_prompter_ = nullptr;
  bool login_dialing_ = false;
  LoginDone login_done_;
  std::chrono::steady_clock::time_point last_probe_{};
  std::chrono::steady_clock::time_point last_tick_mono_{};
  std::chrono::nanoseconds last_tick_boot_{0};
};

// The real clocks (steady_clock, CLOCK_BOOTTIME) and the loop's timers.
class LoopClock : public LinkSupervisor::Clock {
 public:
  // `loop` must outlive the clock.
  explicit LoopClock(net::EventLoop& loop) : loop_(loop) {}
  std::chrono::steady_clock::time_point Now() override { return std::chrono::steady_clock::now(); }
  std::chrono::nanoseconds BootTime() override;
  TimerId After(std::chrono::milliseconds delay, std::function<void()> fn) override {
    return loop_.AddTimer(delay, std::move(fn));
  }
  void Cancel(TimerId id) override { loop_.CancelTimer(id); }

 private:
  net::EventLoop& loop_;
};

}  // namespace tether::daemon
