#include "daemon/host_daemon.h"

#include <libssh/server.h>  // ssh_send_keepalive lives here, though clients use it

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "net/socket.h"

namespace tether::daemon {
namespace {

// libssh reads at most 4 KiB per poll of the session: drain up to this many polls per
// wake-up (1 MiB) before serving the channels, so one busy link cannot starve the rest.
constexpr int kMaxSessionPollsPerWake = 256;

const char* KindFlag(config::ForwardKind kind) {
  switch (kind) {
    case config::ForwardKind::kLocal:
      return "local";
    case config::ForwardKind::kRemote:
      return "remote";
    case config::ForwardKind::kDynamic:
      return "dynamic";
  }
  return "local";
}

}  // namespace

HostDaemon::HostDaemon(config::HostConfig host, StateDir state)
    : host_(std::move(host)), state_(std::move(state)), scratch_(new char[forward::kMaxWindow]) {
  pump_context_.loop = &loop_;
  pump_context_.scratch = scratch_.get();
  pump_context_.scratch_size = forward::kMaxWindow;
  pump_context_.budget = &budget_;
  pumps_ = std::make_unique<forward::PumpSet>(pump_context_);
}

HostDaemon::~HostDaemon() {
  connector_.reset();  // joins an attempt in flight, bounded by its timeouts
  pumps_->Clear();
  forwards_.clear();
  control_.reset();
  if (ssh_event_ != nullptr) {
    if (session_) ssh_event_remove_session(ssh_event_, session_->raw());
    ssh_event_free(ssh_event_);
  }
}

Status HostDaemon::BindForwards(const std::vector<config::ForwardSpec>& specs) {
  for (const auto& spec : specs) {
    if (spec.kind != config::ForwardKind::kLocal) {
      return MakeError("forward", spec.ToFlagString() + ": " + KindFlag(spec.kind) +
                                      " forwards are not supported by this version");
    }
    auto fwd = forward::LocalForward::Bind(spec, host_.alias);
    if (!fwd.ok()) return fwd.take_error();
    forwards_.push_back(std::move(*fwd));
  }
  return Status::Ok();
}

namespace {

// CLOCK_BOOTTIME keeps counting while the machine sleeps, the monotonic clock does not:
// a gap between them means the laptop slept.
std::chrono::nanoseconds BootTime() {
#ifdef CLOCK_BOOTTIME
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
#else
  return std::chrono::steady_clock::now().time_since_epoch();
#endif
}

}  // namespace

Status HostDaemon::Start(std::unique_ptr<ssh::Session> session) {
  ssh_event_ = ssh_event_new();
  if (ssh_event_ == nullptr) return MakeError("daemon", "cannot set up the session's event");
  auto listener = net::ListenUnix(state_.SocketPath(host_.alias));
  if (!listener.ok()) return listener.take_error();
  control_ = std::make_unique<control::ControlServer>(loop_, std::move(*listener));
  RegisterControlHandlers();
  for (auto& fwd : forwards_) fwd->Start(loop_, *pumps_, nullptr);
  AttachSession(std::move(session));
  connector_ = std::make_unique<Connector>(
      loop_, [this](Result<std::unique_ptr<ssh::Session>> r) { OnReconnected(std::move(r)); });
  loop_.AddIterationHook([this] { AfterIteration(); });
  Status sig = loop_.HandleSignals({SIGTERM, SIGINT, SIGHUP}, [this](int signo) {
    Shutdown(std::string("signal ") + ::strsignal(signo));
  });
  if (!sig.ok()) return sig;
  ::signal(SIGPIPE, SIG_IGN);
  started_ = std::chrono::steady_clock::now();
  last_tick_mono_ = started_;
  last_tick_boot_ = BootTime();
  loop_.AddTimer(kLinkTick, [this] { OnLinkTick(); });
  spdlog::info("[{}] up: {}@{} port {}, cipher {}, auth {}, {} forward(s)", host_.alias, host_.user,
               host_.hostname, host_.port, session_->cipher(), session_->auth_method(),
               forwards_.size());
  return Status::Ok();
}

void HostDaemon::AttachSession(std::unique_ptr<ssh::Session> session) {
  session_ = std::move(session);
  session_->SetNonBlocking();
  ssh_event_add_session(ssh_event_, session_->raw());
  counter_ = ssh_counter_struct{};
  last_in_bytes_ = 0;
  ssh_set_counters(session_->raw(), &counter_, nullptr);
  auto interval = host_.server_alive_interval_s > 0
                      ? std::chrono::milliseconds(host_.server_alive_interval_s * 1000)
                      : Keepalive::kDefaultInterval;
  int count_max =
      host_.server_alive_count_max > 0 ? host_.server_alive_count_max : Keepalive::kDefaultCountMax;
  keepalive_.emplace(interval, count_max, std::chrono::steady_clock::now());
  // A blocking write into a dead link must fail within the same bound as the keepalive.
  net::SetSendTimeout(session_->fd(), keepalive_->dead_after());
  net::SetUserTimeout(session_->fd(), keepalive_->dead_after());
  session_wants_write_ = false;
  loop_.Watch(session_->fd(), net::kReadable, [this](unsigned events) { OnSessionEvents(events); });
  for (auto& fwd : forwards_) fwd->SetSession(session_->raw());
  link_state_ = "up";
}

void HostDaemon::LinkLost(const std::string& why) {
  if (!session_) return;
  spdlog::warn("[{}] link lost: {}; local listeners stay open", host_.alias, why);
  last_error_ = why;
  // Streams that were live at the break end now rather than hang: their channels died
  // with the session.
  pumps_->Clear();
  for (auto& fwd : forwards_) fwd->SetSession(nullptr);
  loop_.Unwatch(session_->fd());
  ssh_event_remove_session(ssh_event_, session_->raw());
  session_.reset();
  keepalive_.reset();
  ScheduleReconnect();
}

void HostDaemon::ScheduleReconnect() {
  if (reconnect_timer_ != 0 || connector_->running()) return;
  auto delay = backoff_.Next();
  if (link_state_ != "needs-auth") link_state_ = "reconnecting";
  spdlog::info("[{}] reconnecting in {} ms (attempt {})", host_.alias, delay.count(),
               backoff_.attempts());
  reconnect_timer_ = loop_.AddTimer(delay, [this] {
    reconnect_timer_ = 0;
    config::HostConfig host = host_;
    if (host.connect_timeout.count() == 0) host.connect_timeout = kReconnectTimeout;
    connector_->Start(host, ssh::ConnectOptions{});
  });
}

void HostDaemon::OnReconnected(Result<std::unique_ptr<ssh::Session>> result) {
  if (!result.ok()) {
    last_error_ = result.error().ToString();
    // Without a terminal a daemon cannot type a passphrase or a one-time code: say so
    // in `status`, and keep trying (an agent may get the key meanwhile).
    if (result.error().step == "auth" || result.error().step == "host key") {
      link_state_ = "needs-auth";
    }
    spdlog::warn("[{}] reconnect failed: {}", host_.alias, last_error_);
    ScheduleReconnect();
    return;
  }
  ++reconnects_;
  backoff_.Reset();
  AttachSession(std::move(*result));
  spdlog::info("[{}] link is back (reconnect #{})", host_.alias, reconnects_);
}

void HostDaemon::OnLinkTick() {
  auto now = std::chrono::steady_clock::now();
  auto boot = BootTime();
  // Slept: the boot clock ran on while the monotonic one stood still.
  bool woke = (boot - last_tick_boot_) - (now - last_tick_mono_) > std::chrono::seconds(2);
  last_tick_mono_ = now;
  last_tick_boot_ = boot;
  if (woke) {
    spdlog::info("[{}] the machine woke from sleep: checking the link now", host_.alias);
    if (!session_ && reconnect_timer_ != 0) {
      loop_.CancelTimer(reconnect_timer_);
      reconnect_timer_ = 0;
      backoff_.Reset();
      ScheduleReconnect();
    }
  }
  for (auto& fwd : forwards_) fwd->ExpireWaiting(now, kPendingConnectionWait);
  if (session_ && keepalive_) {
    if (counter_.in_bytes != last_in_bytes_) {
      last_in_bytes_ = counter_.in_bytes;
      keepalive_->OnReceived(now);
    }
    switch (keepalive_->Tick(now)) {
      case Keepalive::Action::kNone:
        break;
      case Keepalive::Action::kSendProbe:
        // ssh_send_keepalive alternates between collecting the previous reply and
        // sending a request (libssh keeps one global-request slot): two calls make
        // sure one keepalive@openssh.com (want-reply) is in flight.
        ssh_send_keepalive(session_->raw());
        ssh_send_keepalive(session_->raw());
        break;
      case Keepalive::Action::kDead:
        LinkLost("no answer from the server for " +
                 std::to_string(keepalive_->dead_after().count() / 1000) + " s");
        break;
    }
  }
  loop_.AddTimer(kLinkTick, [this] { OnLinkTick(); });
}

void HostDaemon::OnSessionEvents(unsigned /*events*/) {
  for (int i = 0; i < kMaxSessionPollsPerWake; ++i) {
    int rc = ssh_event_dopoll(ssh_event_, 0);
    if (rc != SSH_OK) break;
  }
  if (session_ && !session_->IsConnected()) {
    std::string why = session_->LastError();
    LinkLost(why.empty() ? "the server closed the connection" : why);
  }
}

void HostDaemon::AfterIteration() {
  if (!session_) return;
  pumps_->ServiceDirty();
  bool wants_write = session_->WantsWrite();
  if (wants_write != session_wants_write_) {
    session_wants_write_ = wants_write;
    loop_.SetInterest(session_->fd(),
                      wants_write ? net::kReadable | net::kWritable : net::kReadable);
  }
}

void HostDaemon::Shutdown(const std::string& why) {
  spdlog::info("[{}] stopping: {}", host_.alias, why);
  loop_.Stop();
}

Status HostDaemon::Run() {
  Status s = loop_.Run();
  pumps_->Clear();
  for (auto& fwd : forwards_) fwd->Stop();
  control_.reset();
  ::unlink(state_.SocketPath(host_.alias).c_str());
  return s;
}

nlohmann::json HostDaemon::StatusJson() const {
  using nlohmann::json;
  json fwds = json::array();
  for (const auto& f : forwards_) {
    const auto& st = f->stats();
    fwds.push_back(json{{"kind", KindFlag(f->spec().kind)},
                        {"spec", f->spec().ToString()},
                        {"listen", f->listen_address()},
                        {"target", f->spec().target.ToString()},
                        {"live", st.live},
                        {"total", st.total},
                        {"failed", st.failed},
                        {"bytes_in", st.bytes_in},
                        {"bytes_out", st.bytes_out}});
  }
  auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  return json{
      {"host", host_.alias},
      {"state", link_state_},
      {"pid", ::getpid()},
      {"user", host_.user},
      {"hostname", host_.hostname},
      {"port", host_.port},
      {"uptime_s", uptime.count()},
      {"rtt_ms", keepalive_ && keepalive_->rtt() ? json(keepalive_->rtt()->count()) : json()},
      {"reconnects", reconnects_},
      {"last_error", last_error_},
      {"cipher", session_ ? session_->cipher() : ""},
      {"remote_system", session_ ? session_->remote_system() : ""},
      {"window_budget_used", budget_.used()},
      {"forwards", fwds}};
}

void HostDaemon::RegisterControlHandlers() {
  control_->Register(
      "status", [this](const control::Json&) -> Result<control::Json> { return StatusJson(); });
  control_->Register("stop", [this](const control::Json&) -> Result<control::Json> {
    // Reply first, stop on the next wake-up.
    loop_.AddTimer(std::chrono::milliseconds(0), [this] { Shutdown("tether down"); });
    return control::Json{{"stopping", true}};
  });
  control_->Register("ping", [](const control::Json&) -> Result<control::Json> {
    return control::Json{{"pong", true}};
  });
}

}  // namespace tether::daemon
