#include "daemon/host_daemon.h"

#include <signal.h>
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

Status HostDaemon::Start(std::unique_ptr<ssh::Session> session) {
  session_ = std::move(session);
  session_->SetNonBlocking();
  ssh_event_ = ssh_event_new();
  if (ssh_event_ == nullptr || ssh_event_add_session(ssh_event_, session_->raw()) != SSH_OK) {
    return MakeError("daemon", "cannot set up the session's event");
  }
  auto listener = net::ListenUnix(state_.SocketPath(host_.alias));
  if (!listener.ok()) return listener.take_error();
  control_ = std::make_unique<control::ControlServer>(loop_, std::move(*listener));
  RegisterControlHandlers();
  for (auto& fwd : forwards_) fwd->Start(loop_, *pumps_, session_->raw());
  loop_.Watch(session_->fd(), net::kReadable, [this](unsigned events) { OnSessionEvents(events); });
  loop_.AddIterationHook([this] { AfterIteration(); });
  Status sig = loop_.HandleSignals({SIGTERM, SIGINT, SIGHUP}, [this](int signo) {
    Shutdown(std::string("signal ") + ::strsignal(signo));
  });
  if (!sig.ok()) return sig;
  ::signal(SIGPIPE, SIG_IGN);
  started_ = std::chrono::steady_clock::now();
  spdlog::info("[{}] up: {}@{} port {}, cipher {}, auth {}, {} forward(s)", host_.alias, host_.user,
               host_.hostname, host_.port, session_->cipher(), session_->auth_method(),
               forwards_.size());
  return Status::Ok();
}

void HostDaemon::OnSessionEvents(unsigned /*events*/) {
  for (int i = 0; i < kMaxSessionPollsPerWake; ++i) {
    int rc = ssh_event_dopoll(ssh_event_, 0);
    if (rc != SSH_OK) break;
  }
  if (!session_->IsConnected()) {
    spdlog::error("[{}] connection lost: {}", host_.alias, session_->LastError());
    stop_reason_ =
        MakeError("link", "connection to " + host_.alias + " lost: " + session_->LastError());
    Shutdown("connection lost");
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
  if (!s.ok()) return s;
  return stop_reason_;
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
  return json{{"host", host_.alias},
              {"state", "up"},
              {"pid", ::getpid()},
              {"user", host_.user},
              {"hostname", host_.hostname},
              {"port", host_.port},
              {"uptime_s", uptime.count()},
              {"rtt_ms", nullptr},
              {"reconnects", 0},
              {"cipher", session_ ? session_->cipher() : ""},
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
