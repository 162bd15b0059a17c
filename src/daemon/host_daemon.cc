#include "daemon/host_daemon.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include <openssl/rand.h>

#include "common/log.h"
#include "common/text.h"
#include "control/mux_wire.h"
#include "daemon/notify.h"
#include "forward/local_forward.h"
#include "forward/remote_forward.h"
#include "net/address_scope.h"
#include "net/socket.h"
#include "proxy/upstream.h"

namespace tether::daemon {
namespace {

// Hex of `bytes` bytes from OpenSSL's CSPRNG.
std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) std::abort();  // no safe fallback
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : raw) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// The server proxy's token: 128 bits, enough against guessing through a rate-limited
// SSH channel for the daemon's lifetime.
constexpr size_t kProxyTokenBytes = 16;

}  // namespace

HostDaemon::HostDaemon(config::HostConfig host, StateDir state)
    : host_(std::move(host)), state_(std::move(state)), scratch_(new char[forward::kMaxWindow]) {
  proxy_credentials_.username = "tether-" + RandomHex(4);
  proxy_credentials_.password = RandomHex(kProxyTokenBytes);
  pump_context_.loop = &loop_;
  pump_context_.scratch = scratch_.get();
  pump_context_.scratch_size = forward::kMaxWindow;
  pump_context_.budget = &budget_;
  pumps_ = std::make_unique<forward::PumpSet>(pump_context_);
  connects_ = std::make_unique<net::ConnectPool>(loop_);
  sessions_ = std::make_unique<SessionPool>(loop_, host_, budget_);
  dialer_ = std::make_unique<HostDialer>(loop_, *connects_, host_);
  LinkSupervisor::Owner& owner = *this;  // a private base: convert where it is visible
  supervisor_ = std::make_unique<LinkSupervisor>(host_, clock_, *dialer_, owner);
  login_ = std::make_unique<LoginRelay>(loop_, *supervisor_, host_.alias);
  // Its shell loop runs as a session of the daemon's own, placed like any other.
  owner_check_ =
      std::make_unique<forward::OwnerCheck>(loop_, ServerRunner("owner check"), host_.alias);
}

forward::OwnerCheck::Runner HostDaemon::ServerRunner(const std::string& what) {
  return [this, what](const std::string& command, UniqueFd in, UniqueFd out, UniqueFd err,
                      forward::OwnerCheck::Ended ended) {
    ExecRequest exec;
    exec.command = command;
    SessionEvents events;
    events.started = [ended](bool ok, const std::string& error, bool) {
      if (!ok) ended(error);
    };
    events.finished = [ended](uint32_t) { ended("its session on the server ended"); };
    sessions_->Start(std::move(exec), std::move(in), std::move(out), std::move(err),
                     std::move(events), what);
  };
}

HostDaemon::~HostDaemon() {
  login_->Stop("the daemon is stopping");  // a prompt waiting lets its attempt end
  supervisor_.reset();
  dialer_.reset();  // joins an attempt in flight, bounded by its timeouts
  login_.reset();
  lanes_.RetireAll();
  control_path_.reset();
  fast_exec_.reset();
  sessions_.reset();
  mux_.reset();
  pumps_->Clear();
  auto_forwards_.clear();  // their probes use connects_
  forwards_.clear();
  opens_.Attach(nullptr);
  connects_.reset();
  control_.reset();
  link_.reset();
}

Status HostDaemon::BindForwards(const std::vector<config::ForwardSpec>& specs) {
  for (const auto& spec : specs) {
    if (FindForwardAt(spec) != forwards_.end()) {
      return MakeError("forward",
                       spec.ToFlagString() + ": " + spec.listen.ToString() + " is given twice");
    }
    auto fwd = MakeForward(spec);
    if (!fwd.ok()) return fwd.take_error();
    forwards_.push_back(std::move(*fwd));
  }
  return Status::Ok();
}

bool HostDaemon::Supports(const config::ForwardSpec& spec) {
  switch (spec.kind) {
    case config::ForwardKind::kLocal:
      return true;
    case config::ForwardKind::kRemote:
      // libssh 0.10 cannot ask the server to listen on a unix socket
      // (streamlocal-forward@openssh.com).
      return !spec.listen.is_unix();
    case config::ForwardKind::kDynamic:
      return true;
  }
  return false;
}

Result<std::unique_ptr<forward::Forward>> HostDaemon::MakeForward(const config::ForwardSpec& spec) {
  if (!Supports(spec)) {
    std::string why = spec.kind == config::ForwardKind::kRemote && spec.listen.is_unix()
                          ? "listening on a unix socket on the server is not supported "
                            "(libssh 0.10 has no streamlocal-forward)"
                          : std::string(forward::ForwardKindName(spec.kind)) +
                                " forwards of this shape are not "
                                "supported by this version";
    return MakeError("forward", spec.ToFlagString() + ": " + why);
  }
  if (spec.kind == config::ForwardKind::kRemote) {
    forward::RemoteForward::Context context;
    context.pumps = pumps_.get();
    context.requests = &requests_;
    context.connects = connects_.get();
    context.loop = &loop_;
    context.owner_check = owner_check_.get();
    forward::RemoteForward::ProxySettings settings;
    settings.reach = laptop_network_;
    return std::unique_ptr<forward::Forward>(
        std::make_unique<forward::RemoteForward>(spec, host_.alias, context, std::move(settings)));
  }
  auto fwd = forward::LocalForward::Bind(spec, host_.alias);
  if (!fwd.ok()) return fwd.take_error();
  return std::unique_ptr<forward::Forward>(std::move(*fwd));
}

Status HostDaemon::EnableProxy(const ProxyOptions& options) {
  forward::RemoteForward::ProxySettings settings;
  settings.reach = laptop_network_;
  settings.use_environment = true;
  settings.policy.require_auth = !options.open;
  settings.policy.credentials = proxy_credentials_;
  settings.owner_only = !options.open;
  if (!options.upstream.empty()) {
    auto upstream = proxy::ParseUpstreamUrl(options.upstream);
    if (!upstream.ok()) return upstream.take_error();
    settings.upstream = *upstream;
  }
  config::ForwardSpec spec;
  spec.kind = config::ForwardKind::kRemote;
  spec.listen.host = "127.0.0.1";
  spec.listen.port = options.port;
  spec.dynamic = true;
  for (const auto& f : forwards_) {
    if (f->server_proxy()) {
      return MakeError(
          "proxy", "the server proxy already runs on port " + std::to_string(f->spec().listen.port),
          "cancel it first: tether forward " + host_.alias + " --cancel -R " +
              std::to_string(f->spec().listen.port));
    }
  }
  if (FindForwardAt(spec) != forwards_.end()) {
    return MakeError("proxy",
                     "port " + std::to_string(options.port) + " on the server is already forwarded",
                     "choose another with --proxy=PORT");
  }
  if (options.open) {
    spdlog::warn("[{}] the server proxy is open: every account on the server can use it",
                 host_.alias);
  }
  forward::RemoteForward::Context context;
  context.loop = &loop_;
  context.pumps = pumps_.get();
  context.requests = &requests_;
  context.connects = connects_.get();
  context.owner_check = owner_check_.get();
  forwards_.push_back(
      std::make_unique<forward::ServerProxy>(spec, host_.alias, context, std::move(settings)));
  if (control_) {  // running: start now; else Start() does
    StartForward(*forwards_.back());
    RecordForwards();
  }
  return Status::Ok();
}

void HostDaemon::StartForward(forward::Forward& fwd) {
  ssh_session session = link_ ? link_->raw() : nullptr;
  fwd.Start(
      forward::StartContext{&loop_, pumps_.get(), session, kPendingConnectionWait,
                            [this](forward::NewStream& stream) { return PlaceStream(stream); },
                            forward::ListenerLimits{}});
  if (fwd.streams_from_laptop() && link_) EnsureLanes(std::chrono::steady_clock::now());
}

namespace {

// Where a forward listens, for matching: an empty bind address and "localhost" both
// mean the loopback address, as ssh treats them.
config::Endpoint NormalizedListen(const config::Endpoint& e) {
  config::Endpoint n = e;
  if (!n.is_unix() && (n.host.empty() || n.host == "localhost")) n.host = "127.0.0.1";
  return n;
}

// -L and -D both listen on the laptop and so share its ports; -R listens on the server.
bool ListensOnServer(config::ForwardKind kind) { return kind == config::ForwardKind::kRemote; }

}  // namespace

std::vector<std::unique_ptr<forward::Forward>>::iterator HostDaemon::FindForwardAt(
    const config::ForwardSpec& spec) {
  config::Endpoint want = NormalizedListen(spec.listen);
  return std::find_if(forwards_.begin(), forwards_.end(), [&](const auto& f) {
    if (ListensOnServer(f->spec().kind) != ListensOnServer(spec.kind)) return false;
    const config::Endpoint have = NormalizedListen(f->spec().listen);
    if (ListensOnServer(spec.kind) && !have.is_unix() && have.port == 0) {
      // -R 0: each gets a port of its own, so only the same forward is the same; and it
      // is found by the port the server gave it too, as ssh -O cancel finds it.
      if (f->spec() == spec) return true;
      config::Endpoint at = have;
      at.port = f->server_listen_port();
      return at.port != 0 && at == want;
    }
    return have == want;
  });
}

namespace {

// A daemon holds a descriptor per forwarded connection (two for a -R one): the usual soft
// limit of 1024 would refuse connections past about a thousand. Raised to the hard limit,
// as servers do; the event loop uses poll(2), which has no FD_SETSIZE cap.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    spdlog::warn("could not raise the descriptor limit: {}", std::strerror(errno));
  }
}

}  // namespace

Status HostDaemon::Start(std::unique_ptr<ssh::Session> session) {
  RaiseDescriptorLimit();
  if (session) remote_system_ = session->remote_system();
  auto listener = net::ListenUnix(state_.SocketPath(host_.alias));
  if (!listener.ok()) return listener.take_error();
  control_ = std::make_unique<control::ControlServer>(loop_, std::move(*listener));
  api_.Register(*control_);
  login_->Register(*control_);
  auto mux_listener = net::ListenUnix(state_.MuxPath(host_.alias));
  if (!mux_listener.ok()) return mux_listener.take_error();
  mux_ = std::make_unique<control::MuxServer>(loop_, std::move(*mux_listener),
                                              state_.MuxPath(host_.alias), *this);
  control_path_ = ControlPathListener::ForHost(loop_, host_, state_.MuxPath(host_.alias), *this);
  if (control_path_) control_path_->Claim();
  for (auto& fwd : forwards_) StartForward(*fwd);
  Status attached = supervisor_->Start(std::move(session));
  if (!attached.ok()) return attached;
  // On the session just attached: the first read is not a failed start's retry later.
  if (port_watch_) port_watch_->Start();
  loop_.AddIterationHook([this] { AfterIteration(); });
  // SIGWINCH comes from mux clients (ssh relays its own to the master's pid): every
  // session with a pty checks its terminal's size.
  Status sig = loop_.HandleSignals({SIGTERM, SIGINT, SIGHUP, SIGWINCH}, [this](int signo) {
    if (signo == SIGWINCH) {
      sessions_->WindowChanged();
      return;
    }
    Shutdown(std::string("signal ") + ::strsignal(signo));
  });
  if (!sig.ok()) return sig;
  ::signal(SIGPIPE, SIG_IGN);
  started_ = std::chrono::steady_clock::now();
  loop_.AddTimer(kLinkTick, [this] { OnLinkTick(); });
  record_.Start(::getpid(), std::chrono::system_clock::now(), RecordedForwards());
  spdlog::info("[{}] up: {}@{} port {}, cipher {}, auth {}, {} forward(s)", host_.alias, host_.user,
               host_.hostname, host_.port, link_->session().cipher(),
               link_->session().auth_method(), forwards_.size());
  return Status::Ok();
}

Status HostDaemon::LinkUp(std::unique_ptr<ssh::Session> session,
                          std::chrono::milliseconds dead_after) {
  // After the link drained what arrived: keepalive accounting, a lost link noticed.
  auto on_input = [this] {
    supervisor_->OnInput();
    if (!link_->connected()) supervisor_->Lost(link_->EndReason());
  };
  auto link = ssh::Link::Open(loop_, std::move(session),
                              {.read_ahead = true, .dead_after = dead_after}, on_input);
  if (!link.ok()) return link.take_error();
  link_ = std::move(*link);
  requests_.Attach(link_->raw());
  sessions_->Attach(link_->raw(), dead_after);
  opens_.Attach(link_->raw());
  for (auto& fwd : forwards_) fwd->SetSession(link_->raw());
  EnsureLanes(std::chrono::steady_clock::now());
  if (fast_exec_) fast_exec_->LinkUp();
  return Status::Ok();
}

void HostDaemon::LinkLost(const std::string& why) {
  // Streams that were live at the break end now rather than hang: their channels died
  // with the session.
  pumps_->Clear();
  sshd_listeners_.clear();  // an old connection's, with it
  if (fast_exec_) fast_exec_->LinkDown();
  sessions_->Detach(why);
  lanes_.RetireAll();
  for (auto& fwd : forwards_) fwd->SetSession(nullptr);
  opens_.Attach(nullptr);
  requests_.Attach(nullptr);
  link_.reset();
}

void HostDaemon::NeedsLogin(const std::string& why) {
  spdlog::warn(
      "[{}] the server wants a password, a code or a passphrase: the link stays down "
      "until `tether login {}` ({})",
      host_.alias, host_.alias, why);
  sessions_->SetDownReason("it needs a login: run `tether login " + host_.alias + "`");
  if (notify_) {
    NotifyDesktop("tether: " + host_.alias + " needs a login",
                  "The connection to " + host_.alias +
                      " was lost and the server asks for a password or a code. Run: tether login " +
                      host_.alias);
  }
}

std::optional<bool> HostDaemon::PeerAcknowledges(std::chrono::milliseconds within) {
  return net::PeerAcknowledges(link_->session().fd(), within);
}

void HostDaemon::OnLinkTick() {
  auto now = std::chrono::steady_clock::now();
  for (auto& fwd : forwards_) {
    fwd->OnTick(now);
    fwd->SampleRate(now);
  }
  sessions_->Check(now);
  lanes_.Check(now);
  EnsureLanes(now);
  if (link_) requests_.Poll();
  supervisor_->Tick();
  record_.Tick(now);
  loop_.AddTimer(kLinkTick, [this] { OnLinkTick(); });
}

void HostDaemon::AfterIteration() {
  if (!link_) return;
  requests_.Poll();
  ServeAccepted();
  pumps_->ServiceDirty();
  sessions_->Service();
  ServeAccepted();  // reading the channels may have polled the session
  link_->UpdateWriteInterest();
  sessions_->UpdateWriteInterest();
}

bool HostDaemon::PlaceStream(forward::NewStream& stream) {
  return lanes_.Place(stream, pumps_->size());
}

void HostDaemon::EnsureLanes(std::chrono::steady_clock::time_point now) {
  if (!link_) return;
  bool has_local = std::any_of(forwards_.begin(), forwards_.end(),
                               [](const auto& f) { return f->streams_from_laptop(); });
  if (!has_local) return;
  ssh::ConnectOptions options;
  options.tcp_connect_timeout = kReconnectTcpTimeout;
  lanes_.Ensure(now, RedialHost(host_), options, supervisor_->DeadAfter());
}

uint32_t HostDaemon::StartSession(const control::mux::NewSession& request, UniqueFd in,
                                  UniqueFd out, UniqueFd err, SessionEvents events) {
  ExecRequest exec;
  exec.command = request.command;
  exec.subsystem = request.subsystem;
  exec.pty = request.want_tty;
  exec.term = request.term;
  exec.env = request.env;
  exec.force_session = request.force_session;
  std::string what = request.subsystem         ? "subsystem " + request.command
                     : request.command.empty() ? std::string("shell")
                                               : "exec (" + std::to_string(request.command.size()) +
                                                     " bytes of command line)";
  return sessions_->Start(std::move(exec), std::move(in), std::move(out), std::move(err),
                          std::move(events), what);
}

uint32_t HostDaemon::StartStdioForward(const control::mux::StdioForward& request, UniqueFd in,
                                       UniqueFd out, SessionEvents events) {
  ExecRequest exec;
  exec.stdio_forward = true;
  exec.forward_host = request.host;
  exec.forward_port = static_cast<uint16_t>(request.port);
  return sessions_->Start(
      std::move(exec), std::move(in), std::move(out), UniqueFd(), std::move(events),
      "stdio forward to " + net::FormatHostPort(request.host, exec.forward_port));
}

void HostDaemon::EndSession(uint32_t id) { sessions_->End(id); }

uint32_t HostDaemon::Pid() { return static_cast<uint32_t>(::getpid()); }

void HostDaemon::Terminate() { StopSoon("ssh -O exit"); }

namespace {

// A mux forward request as a forward spec.
Result<config::ForwardSpec> SpecOf(const control::mux::Forward& f) {
  namespace mux = control::mux;
  config::ForwardSpec spec;
  switch (f.type) {
    case mux::kFwdLocal:
      spec.kind = config::ForwardKind::kLocal;
      break;
    case mux::kFwdRemote:
      spec.kind = config::ForwardKind::kRemote;
      break;
    case mux::kFwdDynamic:
      spec.kind = config::ForwardKind::kDynamic;
      spec.dynamic = true;
      break;
    default:
      return MakeError("mux", "unknown forward type " + std::to_string(f.type));
  }
  if (f.listen_port == mux::kPortStreamLocal) {
    spec.listen.path = f.listen_host;
  } else if (f.listen_port > 65535) {
    return MakeError("mux", "listen port out of range");
  } else {
    spec.listen.host = f.listen_host;
    spec.listen.port = static_cast<uint16_t>(f.listen_port);
  }
  if (f.type != mux::kFwdDynamic) {
    if (f.connect_port == mux::kPortStreamLocal) {
      spec.target.path = f.connect_host;
    } else if (f.connect_port > 65535 || f.connect_host.empty()) {
      // ssh sends a remote dynamic forward (-R port) as a remote one with no target.
      if (f.type == mux::kFwdRemote) {
        spec.dynamic = true;
      } else {
        return MakeError("mux", "bad target");
      }
    } else {
      spec.target.host = f.connect_host;
      spec.target.port = static_cast<uint16_t>(f.connect_port);
    }
  }
  // ssh sends "LOCALHOST" for a listen address left out (mux.c, see format_forward).
  if (spec.listen.host == "LOCALHOST") spec.listen.host.clear();
  return spec;
}

}  // namespace

void HostDaemon::OpenForward(const control::mux::Forward& request,
                             std::function<void(Result<uint32_t>)> done) {
  auto spec = SpecOf(request);
  if (!spec.ok()) return done(spec.take_error());
  bool added = false;
  auto fwd = AddForwardSpec(*spec, &added);
  if (!fwd.ok()) return done(fwd.take_error());
  (*fwd)->WhenAnswered([done](Result<uint16_t> port) {
    if (!port.ok()) return done(port.take_error());
    done(uint32_t{*port});
  });
}

Status HostDaemon::CloseForward(const control::mux::Forward& request) {
  auto spec = SpecOf(request);
  if (!spec.ok()) return spec.take_error();
  forward::Forward* fwd = FindForward(*spec);
  if (fwd == nullptr) {
    return MakeError("forward", "no forward listens on " + spec->listen.ToString());
  }
  RemoveForward(*fwd);
  return Status::Ok();
}

bool HostDaemon::WantsServerChannel(const std::string& address, uint16_t port) const {
  return std::any_of(forwards_.begin(), forwards_.end(),
                     [&](const auto& f) { return f->AcceptsServerChannel(address, port); });
}

void HostDaemon::ServeAccepted() {
  for (auto& open : opens_.Take()) {
    forward::Forward* owner = nullptr;
    for (const auto& f : forwards_) {
      if (f->AcceptsServerChannel(open.address, open.port)) owner = f.get();
    }
    if (owner == nullptr) {
      ssh::ServerOpens::Drop(open);  // cancelled meanwhile
      continue;
    }
    owner->ServeServerChannel(open.channel, open.origin_host, open.origin_port);
  }
}

void HostDaemon::Shutdown(const std::string& why) {
  spdlog::info("[{}] stopping: {}", host_.alias, why);
  loop_.Stop();
}

Status HostDaemon::Run() {
  Status s = loop_.Run();
  sessions_->AbortAll("tether down: the daemon stopped");
  control_path_.reset();
  mux_.reset();
  pumps_->Clear();
  for (auto& fwd : forwards_) fwd->Stop();
  control_.reset();
  ::unlink(state_.SocketPath(host_.alias).c_str());
  // A clean stop: nothing is left for doctor to find. A failed loop leaves the record, as
  // a crash would.
  if (s.ok()) record_.Remove();
  return s;
}

DaemonStatus HostDaemon::Snapshot() const {
  DaemonStatus st;
  st.host = host_.alias;
  st.user = host_.user;
  st.hostname = host_.hostname;
  st.port = host_.port;
  st.state = supervisor_->state();
  st.pid = ::getpid();
  st.uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  st.rtt = supervisor_->rtt();
  st.reconnects = supervisor_->reconnects();
  st.last_error = supervisor_->last_error();
  st.remote_system = remote_system_;
  if (control_path_) st.control_path = control_path_->status();
  if (link_) {
    st.cipher = link_->session().cipher();
    st.server_requests = requests_.pending();
  }
  st.window_budget_used = budget_.used();
  st.lanes_wanted = lanes_.wanted();
  st.lanes_off = lanes_.off();
  st.lanes = lanes_.Status();
  st.sessions_waiting = sessions_->waiting();
  st.sessions_live = sessions_->live();
  st.connections = (link_ ? 1 : 0) + sessions_->extra_links();
  st.laptop_network = net::ReachName(laptop_network_);
  st.jump = host_.proxy_jump;
  st.identity_files = host_.identity_files;
  st.ssh_options = ssh_options_;
  return st;
}

forward::Forward* HostDaemon::FindForward(const config::ForwardSpec& spec) {
  auto it = FindForwardAt(spec);
  return it == forwards_.end() ? nullptr : it->get();
}

void HostDaemon::RemoveForward(forward::Forward& fwd) {
  auto it = std::find_if(forwards_.begin(), forwards_.end(),
                         [&](const auto& f) { return f.get() == &fwd; });
  if (it == forwards_.end()) return;
  fwd.Stop();
  spdlog::info("[{}] forward cancelled: {}", host_.alias, fwd.spec().ToFlagString());
  if (auto a = auto_forwards_.find(&fwd); a != auto_forwards_.end()) {
    // Kept away while the daemon runs; a port the server listens on next is forwarded.
    if (auto_plan_) auto_plan_->Cancelled(a->second.server_port);
    auto_forwards_.erase(a);
  }
  forwards_.erase(it);
  RecordForwards();
}

void HostDaemon::RecordForwards() { record_.Update(RecordedForwards()); }

std::vector<RecordedForward> HostDaemon::RecordedForwards() const {
  std::vector<RecordedForward> recorded;
  for (const auto& f : forwards_) {
    const config::ForwardSpec& spec = f->spec();
    RecordedForward r;
    r.kind = f->kind_name();
    r.spec = spec.ToString();
    r.flag = spec.ToFlagString();
    r.bind = spec.listen.host;
    r.port = spec.listen.port;
    r.path = spec.listen.path;
    r.target = f->target_description();
    recorded.push_back(std::move(r));
  }
  return recorded;
}

void HostDaemon::StopSoon(const std::string& why) {
  loop_.AddTimer(std::chrono::milliseconds(0), [this, why] { Shutdown(why); });
}

Result<forward::Forward*> HostDaemon::AddForwardSpec(const config::ForwardSpec& spec, bool* added) {
  *added = false;
  auto existing = FindForwardAt(spec);
  if (existing != forwards_.end()) {
    if ((*existing)->spec() == spec) return existing->get();
    return MakeError("forward",
                     spec.ToFlagString() + ": " + (*existing)->listen_address() +
                         " already forwards " + (*existing)->spec().ToFlagString(),
                     "cancel it first: tether forward " + host_.alias + " --cancel " +
                         (*existing)->spec().ToFlagString());
  }
  auto fwd = MakeForward(spec);
  if (!fwd.ok()) return fwd.take_error();
  forwards_.push_back(std::move(*fwd));
  StartForward(*forwards_.back());
  spdlog::info("[{}] forward added: {}", host_.alias, spec.ToFlagString());
  RecordForwards();
  *added = true;
  return forwards_.back().get();
}

void HostDaemon::SetFastExec(const std::string& binary) {
  fast_exec_ = std::make_unique<FastExec>(loop_, *sessions_, host_.alias, binary);
}

nlohmann::json HostDaemon::FastExecStatus() const {
  if (!fast_exec_) return nullptr;
  return {{"state", FastExec::StateName(fast_exec_->state())},
          {"why", fast_exec_->why()},
          {"by_runner", sessions_->by_runner()},
          {"as_sessions", sessions_->runner_fallbacks()},
          {"restarts", fast_exec_->restarts()}};
}

void HostDaemon::SetAutoForward(forward::AutoForwardPolicy policy) {
  auto_policy_ = std::move(policy);
  forward::AutoForwardPlan::Sink& sink = *this;  // a private base: convert where it is visible
  auto_plan_ = std::make_unique<forward::AutoForwardPlan>(auto_policy_, sink);
  port_watch_ = std::make_unique<forward::PortWatch>(
      loop_, ServerRunner("auto forward watch"),
      [this](const std::vector<forward::SocketEntry>& table, uint32_t uid) {
        OnServerListeners(table, uid);
      },
      host_.alias);
}

namespace {

bool IsLocalhost(const std::string& host) {
  return host.empty() || host == "localhost" || host == "127.0.0.1" || host == "::1";
}

// The inodes of this process's sockets: the server being this machine (a test, a login
// to localhost), our own -L listeners are in its table as the owner's.
std::set<uint64_t> OwnSocketInodes() {
  std::set<uint64_t> inodes;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return inodes;
  while (dirent* e = ::readdir(dir)) {
    char target[64];
    std::string path = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = ::readlink(path.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    std::string_view t(target, static_cast<size_t>(n));
    if (t.rfind("socket:[", 0) != 0 || t.back() != ']') continue;
    if (auto inode = ParseUint(t.substr(8, t.size() - 9))) inodes.insert(*inode);
  }
  ::closedir(dir);
  return inodes;
}

}  // namespace

std::set<uint16_t> HostDaemon::AutoForwardExclusions(
    const std::vector<forward::SocketEntry>& table) const {
  std::set<uint16_t> out{host_.port};
  std::set<uint16_t> laptop_ports;
  for (const auto& f : forwards_) {
    const config::ForwardSpec& spec = f->spec();
    if (auto proxy = f->server_proxy()) out.insert(proxy->port);
    if (spec.kind == config::ForwardKind::kRemote) {
      if (spec.listen.port != 0) out.insert(spec.listen.port);
      // -R 0: the port the server chose. sshd answers the request before it relays
      // anything the watch read after its listen, so the port is known before it is seen.
      if (f->server_listen_port() != 0) out.insert(f->server_listen_port());
      continue;
    }
    if (!spec.listen.is_unix()) laptop_ports.insert(spec.listen.port);
    // The user's own -L to a server port (the agent's among them) already forwards it.
    if (spec.kind == config::ForwardKind::kLocal && !auto_forwards_.count(f.get()) &&
        !spec.target.is_unix() && IsLocalhost(spec.target.host)) {
      out.insert(spec.target.port);
    }
  }
  std::set<uint64_t> own = OwnSocketInodes();
  for (const auto& e : table) {
    if (laptop_ports.count(e.local_port) && own.count(e.inode)) out.insert(e.local_port);
    if (sshd_listeners_.count(e.inode)) out.insert(e.local_port);
  }
  return out;
}

void HostDaemon::OnServerListeners(const std::vector<forward::SocketEntry>& table, uint32_t uid) {
  if (!auto_plan_) return;
  size_t capped_before = auto_plan_->capped();
  auto_plan_->Update(forward::ListenersOf(table, uid), AutoForwardExclusions(table));
  if (auto_plan_->capped() > capped_before) {
    spdlog::warn("[{}] auto forward: {} more port(s) listen on the server past the cap of {}",
                 host_.alias, auto_plan_->capped(), auto_policy_.max);
  }
}

bool HostDaemon::Bind(uint16_t server_port, uint16_t local_port, uint64_t inode) {
  config::ForwardSpec spec;
  spec.kind = config::ForwardKind::kLocal;
  spec.listen.host = "127.0.0.1";
  spec.listen.port = local_port;
  spec.target.host = "localhost";
  spec.target.port = server_port;
  if (FindForwardAt(spec) != forwards_.end()) return false;
  auto fwd = MakeForward(spec);
  if (!fwd.ok()) {
    spdlog::debug("[{}] auto forward of server port {}: {}", host_.alias, server_port,
                  fwd.error().message);
    return false;
  }
  forwards_.push_back(std::move(*fwd));
  forward::Forward* added = forwards_.back().get();
  StartForward(*added);
  auto_forwards_[added] = {server_port, "", "", nullptr};
  spdlog::info("[{}] auto forward added: {}{}", host_.alias, spec.ToFlagString(),
               local_port == server_port
                   ? ""
                   : " (port " + std::to_string(server_port) + " is taken on the laptop)");
  RecordForwards();
  port_watch_->CommandLineOf(
      inode, [this, added, server_port, local_port, inode](const std::string& cmd) {
        auto it = auto_forwards_.find(added);
        if (it == auto_forwards_.end() || it->second.server_port != server_port) return;
        it->second.process = forward::ProcessName(cmd);
        if (cmd.rfind("sshd", 0) == 0) {
          // sshd's own listener (a remote forward): gone at the next read of the table.
          spdlog::info("[{}] server port {} is sshd's own (a remote forward): not forwarded",
                       host_.alias, server_port);
          sshd_listeners_.insert(inode);
          return;
        }
        it->second.url = forward::WellKnownUrl(cmd, local_port);
        // The name only: the arguments and the URL may carry a token.
        if (!it->second.process.empty()) {
          spdlog::info("[{}] auto forward of server port {}: {}", host_.alias, server_port,
                       it->second.process);
        }
        if (it->second.url.empty()) ProbeAutoForward(added, server_port, local_port);
      });
  return true;
}

void HostDaemon::ProbeAutoForward(const forward::Forward* fwd, uint16_t server_port,
                                  uint16_t local_port) {
  auto it = auto_forwards_.find(fwd);
  if (it == auto_forwards_.end()) return;
  // Through the forward's own listener, so through the tunnel, as the laptop's browser.
  it->second.probe = std::make_unique<forward::HttpProbe>(
      loop_, *connects_, local_port, [this, fwd, server_port, local_port](forward::WebApp app) {
        auto it = auto_forwards_.find(fwd);
        if (it == auto_forwards_.end() || it->second.server_port != server_port) return;
        if (app == forward::WebApp::kNone || !it->second.url.empty()) return;
        it->second.url = forward::WebAppUrl(app, local_port);
        spdlog::info("[{}] auto forward of server port {}: it answers as {}", host_.alias,
                     server_port, forward::WebAppName(app));
      });
  it->second.probe->Start();
}

void HostDaemon::Unbind(uint16_t server_port) {
  for (auto it = auto_forwards_.begin(); it != auto_forwards_.end(); ++it) {
    if (it->second.server_port != server_port) continue;
    const forward::Forward* fwd = it->first;
    auto_forwards_.erase(it);
    auto f = std::find_if(forwards_.begin(), forwards_.end(),
                          [&](const auto& p) { return p.get() == fwd; });
    if (f == forwards_.end()) return;
    // Its listener goes; connections in flight are pumps of their own and finish.
    (*f)->Stop();
    spdlog::info("[{}] auto forward removed: {} (nothing listens on server port {})", host_.alias,
                 (*f)->spec().ToFlagString(), server_port);
    forwards_.erase(f);
    RecordForwards();
    return;
  }
}

nlohmann::json HostDaemon::AutoForwardOf(const forward::Forward& fwd) const {
  auto it = auto_forwards_.find(&fwd);
  if (it == auto_forwards_.end()) return nullptr;
  return {{"server_port", it->second.server_port},
          {"local_port", fwd.spec().listen.port},
          {"process", it->second.process},
          {"url", it->second.url}};
}

nlohmann::json HostDaemon::AutoForwardStatus() const {
  if (!auto_plan_) return nullptr;
  return {{"max", auto_policy_.max},
          {"allow", forward::FormatPortRanges(auto_policy_.allow)},
          {"deny", forward::FormatPortRanges(auto_policy_.deny)},
          {"active", auto_plan_->size()},
          {"capped", auto_plan_->capped()},
          {"unavailable", port_watch_->unavailable()}};
}

}  // namespace tether::daemon
