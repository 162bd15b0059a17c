#include "daemon/link_supervisor.h"

#include <time.h>

#include "common/log.h"

namespace tether::daemon {
namespace {

// ServerAliveInterval and ServerAliveCountMax, or the keepalive's defaults.
std::chrono::milliseconds KeepaliveInterval(const config::HostConfig& host) {
  return host.server_alive_interval_s > 0
             ? std::chrono::milliseconds(host.server_alive_interval_s * 1000)
             : Keepalive::kDefaultInterval;
}

int KeepaliveCountMax(const config::HostConfig& host) {
  return host.server_alive_count_max > 0 ? host.server_alive_count_max
                                         : Keepalive::kDefaultCountMax;
}

}  // namespace

// CLOCK_BOOTTIME keeps counting while the machine sleeps, the monotonic clock does not:
// a gap between them means the laptop slept.
std::chrono::nanoseconds LoopClock::BootTime() {
#ifdef CLOCK_BOOTTIME
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
#else
  return std::chrono::steady_clock::now().time_since_epoch();
#endif
}

LinkSupervisor::LinkSupervisor(const config::HostConfig& host, Clock& clock, Dialer& dialer,
                               Owner& owner)
    : alias_(host.alias),
      keepalive_interval_(KeepaliveInterval(host)),
      keepalive_count_max_(KeepaliveCountMax(host)),
      clock_(clock),
      dialer_(dialer),
      owner_(owner) {}

LinkSupervisor::~LinkSupervisor() {
  if (reconnect_timer_ != 0) clock_.Cancel(reconnect_timer_);
}

Status LinkSupervisor::Start(std::unique_ptr<ssh::Session> session) {
  Status attached = Attach(std::move(session));
  if (!attached.ok()) return attached;
  last_tick_mono_ = clock_.Now();
  last_tick_boot_ = clock_.BootTime();
  return Status::Ok();
}

std::optional<std::chrono::milliseconds> LinkSupervisor::rtt() const {
  return keepalive_ ? keepalive_->rtt() : std::nullopt;
}

std::chrono::milliseconds LinkSupervisor::DeadAfter() const {
  return keepalive_ ? keepalive_->dead_after() : keepalive_interval_ * keepalive_count_max_;
}

Status LinkSupervisor::Attach(std::unique_ptr<ssh::Session> session) {
  Keepalive keepalive(keepalive_interval_, keepalive_count_max_, clock_.Now());
  // A blocking write into a dead link must fail within the same bound as the keepalive.
  Status up = owner_.LinkUp(std::move(session), keepalive.dead_after());
  if (!up.ok()) return up;
  last_in_bytes_ = 0;
  keepalive_.emplace(keepalive);
  server_busy_since_.reset();
  state_ = LinkState::kUp;
  return Status::Ok();
}

void LinkSupervisor::Lost(const std::string& why) {
  if (!up()) return;
  spdlog::warn("[{}] link lost: {}; local listeners stay open", alias_, why);
  last_error_ = why;
  probe_path_ = true;
  keepalive_.reset();
  owner_.LinkLost(why);
  ScheduleReconnect();
}

void LinkSupervisor::ScheduleReconnect() {
  if (reconnect_timer_ != 0 || dialer_.dialing()) return;
  auto delay = backoff_.Next();
  if (state_ != LinkState::kNeedsAuth) state_ = LinkState::kReconnecting;
  spdlog::info("[{}] reconnecting in {} ms (attempt {})", alias_, delay.count(),
               backoff_.attempts());
  reconnect_timer_ = clock_.After(delay, [this] {
    reconnect_timer_ = 0;
    Redial();
  });
}

void LinkSupervisor::Redial(UniqueFd first_hop) {
  dialer_.Dial(std::move(first_hop), nullptr,
               [this](Result<std::unique_ptr<ssh::Session>> r) { OnDialed(std::move(r)); });
}

void LinkSupervisor::Login(ssh::Prompter& prompter, LoginDone done) {
  if (up() || logging_in()) {
    Status now = up() ? Status::Ok()
                      : Status(MakeError("login", "another login to " + alias_ + " is running",
                                         "answer it where it asks, or wait for it to end"));
    clock_.After(
        std::chrono::milliseconds(0),
        [done = std::move(done), now = std::move(now)]() mutable { done(std::move(now)); });
    return;
  }
  login_prompter_ = &prompter;
  login_done_ = std::move(done);
  spdlog::info("[{}] a login was asked for: logging in{}", alias_,
               dialer_.dialing() ? " once the attempt running ends" : " now");
  if (!dialer_.dialing()) StartLogin();
}

void LinkSupervisor::StartLogin() {
  if (reconnect_timer_ != 0) {
    clock_.Cancel(reconnect_timer_);
    reconnect_timer_ = 0;
  }
  ssh::Prompter* prompter = login_prompter_;
  login_prompter_ = nullptr;
  login_dialing_ = true;
  dialer_.Dial({}, prompter,
               [this](Result<std::unique_ptr<ssh::Session>> r) { OnDialed(std::move(r)); });
}

void LinkSupervisor::EndLogin(Status result) {
  LoginDone done = std::move(login_done_);
  login_done_ = nullptr;
  if (done) done(std::move(result));
}

void LinkSupervisor::OnDialed(Result<std::unique_ptr<ssh::Session>> result) {
  const bool by_person = login_dialing_;
  login_dialing_ = false;
  const char* attempt = by_person ? "login" : "reconnect";
  Status attached = result.ok() ? Attach(std::move(*result)) : Status(result.take_error());
  if (!attached.ok()) {
    const Error& error = attached.error();
    last_error_ = error.ToString();
    ErrorCode code = error.code;
    // A person's answers were refused: theirs to try again, not the daemon's.
    if (by_person && code == ErrorCode::kAuth) code = ErrorCode::kNeedsLogin;
    if (code == ErrorCode::kNeedsLogin) {
      state_ = LinkState::kNeedsLogin;
    } else if (code == ErrorCode::kAuth || code == ErrorCode::kHostKey) {
      // An agent may get the key meanwhile: retried, and `status` says so.
      state_ = LinkState::kNeedsAuth;
    }
    probe_path_ = code == ErrorCode::kConnect || code == ErrorCode::kResolve;
    spdlog::warn("[{}] {} failed: {}", alias_, attempt, last_error_);
    if (by_person) EndLogin(attached);
    if (login_prompter_ != nullptr) {  // a person asked meanwhile: their turn
      StartLogin();
      return;
    }
    if (code == ErrorCode::kNeedsLogin) {
      // Another attempt without a person ends the same way (and a second factor's PAM
      // module may count it): wait for `tether login`.
      if (!by_person) owner_.NeedsLogin(last_error_);
      return;
    }
    ScheduleReconnect();
    return;
  }
  ++reconnects_;
  backoff_.Reset();
  probe_path_ = true;
  spdlog::info("[{}] link is back ({} #{})", alias_, by_person ? "login" : "reconnect",
               reconnects_);
  if (by_person) EndLogin(Status::Ok());
  if (login_prompter_ != nullptr) {  // a person who asked meanwhile finds it up
    login_prompter_ = nullptr;
    EndLogin(Status::Ok());
  }
}

void LinkSupervisor::NoteBytesReceived(std::chrono::steady_clock::time_point now) {
  if (!keepalive_) return;
  uint64_t in = owner_.LinkBytesIn();
  if (in == last_in_bytes_) return;
  last_in_bytes_ = in;
  keepalive_->OnReceived(now);
  server_busy_since_.reset();
}

void LinkSupervisor::OnInput() { NoteBytesReceived(clock_.Now()); }

void LinkSupervisor::Tick() {
  auto now = clock_.Now();
  auto boot = clock_.BootTime();
  // Slept: the boot clock ran on while the monotonic one stood still. Stopped (SIGSTOP,
  // a starved machine): the tick itself came seconds late. Either way the silence we saw
  // meanwhile says nothing about the link, and the keepalive judges it afresh.
  bool woke = (boot - last_tick_boot_) - (now - last_tick_mono_) > kTickGap;
  bool stalled = now - last_tick_mono_ > kTickGap;
  if ((woke || stalled) && keepalive_) {
    // Bytes that came in meanwhile count first.
    last_in_bytes_ = owner_.LinkBytesIn();
    keepalive_->Resume(now);
  }
  last_tick_mono_ = now;
  last_tick_boot_ = boot;
  if (woke) {
    spdlog::info("[{}] the machine woke from sleep: checking the link now", alias_);
    if (!up() && reconnect_timer_ != 0) {
      clock_.Cancel(reconnect_timer_);
      reconnect_timer_ = 0;
      backoff_.Reset();
      ScheduleReconnect();
    }
    if (up()) owner_.SendKeepalive();  // an answer, or the keepalive's verdict, soon
  }
  if (!up()) {
    ProbeReachability(now);
    return;
  }
  NoteBytesReceived(now);
  JudgeKeepalive(now);
}

void LinkSupervisor::JudgeKeepalive(std::chrono::steady_clock::time_point now) {
  switch (keepalive_->Tick(now)) {
    case Keepalive::Action::kNone:
      return;
    case Keepalive::Action::kSendProbe:
      owner_.SendKeepalive();
      return;
    case Keepalive::Action::kDead:
      break;
  }
  auto acks = owner_.PeerAcknowledges(keepalive_->interval());
  bool busy =
      acks.value_or(false) && (!server_busy_since_ || now - *server_busy_since_ < kBusyServerGrace);
  if (busy) {
    if (!server_busy_since_) {
      server_busy_since_ = now;
      spdlog::warn(
          "[{}] no answer from sshd for {} s, but the server's TCP acknowledges: "
          "busy, not gone; waiting up to {} s more",
          alias_, keepalive_->dead_after().count() / 1000, kBusyServerGrace.count());
    }
    keepalive_->Resume(now);
    return;
  }
  auto silent = keepalive_->dead_after() +
                (server_busy_since_ ? now - *server_busy_since_ : std::chrono::seconds(0));
  Lost("no answer from the server for " +
       std::to_string(std::chrono::duration_cast<std::chrono::seconds>(silent).count()) + " s");
}

void LinkSupervisor::ProbeReachability(std::chrono::steady_clock::time_point now) {
  if (!probe_path_ || probe_in_flight_ || dialer_.dialing()) return;
  if (now - last_probe_ < kReachabilityProbe) return;
  last_probe_ = now;
  probe_in_flight_ = true;
  dialer_.Probe(kReachabilityProbe, [this](Result<UniqueFd> socket) {
    probe_in_flight_ = false;
    if (!socket.ok() || up() || dialer_.dialing()) return;
    if (reconnect_timer_ == 0) return;
    spdlog::info("[{}] the server answers again: reconnecting now", alias_);
    clock_.Cancel(reconnect_timer_);
    reconnect_timer_ = 0;
    Redial(std::move(*socket));
  });
}

}  // namespace tether::daemon
