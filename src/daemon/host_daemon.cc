#include "daemon/host_daemon.h"

#include <libssh/server.h>  // ssh_send_keepalive lives here, though clients use it

#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include <openssl/rand.h>

#include "common/log.h"
#include "control/mux_wire.h"
#include "forward/local_forward.h"
#include "forward/remote_forward.h"
#include "net/socket.h"
#include "proxy/upstream.h"

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
  // Its shell loop runs as a session of the daemon's own, placed like any other.
  owner_check_ = std::make_unique<forward::OwnerCheck>(
      loop_,
      [this](const std::string& command, UniqueFd in, UniqueFd out, UniqueFd err,
             forward::OwnerCheck::Ended ended) {
        ExecRequest exec;
        exec.command = command;
        SessionEvents events;
        events.started = [ended](bool ok, const std::string& error, bool) {
          if (!ok) ended(error);
        };
        events.finished = [ended](uint32_t) { ended("its session on the server ended"); };
        StartExec(std::move(exec), std::move(in), std::move(out), std::move(err), std::move(events),
                  "owner check");
      },
      host_.alias);
}

HostDaemon::~HostDaemon() {
  connector_.reset();  // joins an attempt in flight, bounded by its timeouts
  lanes_.RetireAll();
  extra_connector_.reset();
  sessions_.clear();
  extra_links_.clear();
  mux_.reset();
  pumps_->Clear();
  forwards_.clear();
  for (auto& a : accepted_) ssh_channel_free(a.channel);
  accepted_.clear();
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
  if (control_) StartForward(*forwards_.back());  // running: start now; else Start() does
  return Status::Ok();
}

void HostDaemon::StartForward(forward::Forward& fwd) {
  ssh_session session = link_ ? link_->raw() : nullptr;
  fwd.Start(
      forward::StartContext{&loop_, pumps_.get(), session, kPendingConnectionWait,
                            [this](forward::NewStream& stream) { return PlaceStream(stream); }});
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
    return ListensOnServer(f->spec().kind) == ListensOnServer(spec.kind) &&
           NormalizedListen(f->spec().listen) == want;
  });
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
  auto mux_listener = net::ListenUnix(state_.MuxPath(host_.alias));
  if (!mux_listener.ok()) return mux_listener.take_error();
  mux_ = std::make_unique<control::MuxServer>(loop_, std::move(*mux_listener),
                                              state_.MuxPath(host_.alias), *this);
  for (auto& fwd : forwards_) StartForward(*fwd);
  Status attached = AttachSession(std::move(session));
  if (!attached.ok()) return attached;
  connector_ = std::make_unique<Connector>(
      loop_, [this](Result<std::unique_ptr<ssh::Session>> r) { OnReconnected(std::move(r)); });
  extra_connector_ = std::make_unique<Connector>(
      loop_, [this](Result<std::unique_ptr<ssh::Session>> r) { OnExtraLink(std::move(r)); });
  loop_.AddIterationHook([this] { AfterIteration(); });
  // SIGWINCH comes from mux clients (ssh relays its own to the master's pid): every
  // session with a pty checks its terminal's size.
  Status sig = loop_.HandleSignals({SIGTERM, SIGINT, SIGHUP, SIGWINCH}, [this](int signo) {
    if (signo == SIGWINCH) {
      for (auto& [id, session] : sessions_) session->WindowChanged();
      return;
    }
    Shutdown(std::string("signal ") + ::strsignal(signo));
  });
  if (!sig.ok()) return sig;
  ::signal(SIGPIPE, SIG_IGN);
  started_ = std::chrono::steady_clock::now();
  last_tick_mono_ = started_;
  last_tick_boot_ = BootTime();
  loop_.AddTimer(kLinkTick, [this] { OnLinkTick(); });
  spdlog::info("[{}] up: {}@{} port {}, cipher {}, auth {}, {} forward(s)", host_.alias, host_.user,
               host_.hostname, host_.port, link_->session().cipher(),
               link_->session().auth_method(), forwards_.size());
  return Status::Ok();
}

Status HostDaemon::AttachSession(std::unique_ptr<ssh::Session> session) {
  Keepalive keepalive(KeepaliveInterval(host_), KeepaliveCountMax(host_),
                      std::chrono::steady_clock::now());
  // A blocking write into a dead link must fail within the same bound as the keepalive.
  auto link = ssh::Link::Open(loop_, std::move(session),
                              {.read_ahead = true, .dead_after = keepalive.dead_after()},
                              [this] { OnMainLinkInput(); });
  if (!link.ok()) return link.take_error();
  link_ = std::move(*link);
  last_in_bytes_ = 0;
  requests_.Attach(link_->raw());
  session_limit_.erase(link_->raw());  // a new session may reuse an old one's address
  ssh_set_message_callback(link_->raw(), &HostDaemon::OnMessage, this);
  keepalive_.emplace(keepalive);
  server_busy_since_.reset();
  for (auto& fwd : forwards_) fwd->SetSession(link_->raw());
  link_state_ = LinkState::kUp;
  EnsureLanes(std::chrono::steady_clock::now());
  return Status::Ok();
}

void HostDaemon::LinkLost(const std::string& why) {
  if (!link_) return;
  spdlog::warn("[{}] link lost: {}; local listeners stay open", host_.alias, why);
  last_error_ = why;
  probe_path_ = true;
  // Streams that were live at the break end now rather than hang: their channels died
  // with the session.
  pumps_->Clear();
  for (auto& [id, session] : sessions_) {
    session->Abort("the connection to " + host_.alias + " was lost (" + why + ")");
  }
  sessions_.clear();
  DropExtraLinks("the main connection was lost");
  lanes_.RetireAll();
  for (auto& fwd : forwards_) fwd->SetSession(nullptr);
  for (auto& a : accepted_) ssh_channel_free(a.channel);
  accepted_.clear();
  requests_.Attach(nullptr);
  link_.reset();
  keepalive_.reset();
  ScheduleReconnect();
}

void HostDaemon::ScheduleReconnect() {
  if (reconnect_timer_ != 0 || connector_->running()) return;
  auto delay = backoff_.Next();
  if (link_state_ != LinkState::kNeedsAuth) link_state_ = LinkState::kReconnecting;
  spdlog::info("[{}] reconnecting in {} ms (attempt {})", host_.alias, delay.count(),
               backoff_.attempts());
  reconnect_timer_ = loop_.AddTimer(delay, [this] {
    reconnect_timer_ = 0;
    Redial();
  });
}

config::HostConfig HostDaemon::RedialHost() const {
  config::HostConfig host = host_;
  if (host.connect_timeout.count() == 0) host.connect_timeout = kReconnectTimeout;
  return host;
}

void HostDaemon::Redial(UniqueFd first_hop) {
  ssh::ConnectOptions options;
  options.tcp_connect_timeout = kReconnectTcpTimeout;
  // No `uname` on a reconnect: it runs the user's shell rc, which can take seconds (a
  // pyenv or conda init), and the forwards would wait for it. The system is the same one.
  options.probe = false;
  if (first_hop) options.first_hop_socket = std::make_shared<UniqueFd>(std::move(first_hop));
  connector_->Start(RedialHost(), options);
}

void HostDaemon::NoteBytesReceived(std::chrono::steady_clock::time_point now) {
  if (!link_ || !keepalive_ || link_->bytes_in() == last_in_bytes_) return;
  last_in_bytes_ = link_->bytes_in();
  keepalive_->OnReceived(now);
  server_busy_since_.reset();
}

std::chrono::milliseconds HostDaemon::DeadAfter() const {
  return keepalive_ ? keepalive_->dead_after()
                    : KeepaliveInterval(host_) * KeepaliveCountMax(host_);
}

void HostDaemon::OnReconnected(Result<std::unique_ptr<ssh::Session>> result) {
  if (!result.ok()) {
    last_error_ = result.error().ToString();
    // Without a terminal a daemon cannot type a passphrase or a one-time code: say so
    // in `status`, and keep trying (an agent may get the key meanwhile).
    ErrorCode code = result.error().code;
    if (code == ErrorCode::kAuth || code == ErrorCode::kHostKey) {
      link_state_ = LinkState::kNeedsAuth;
    }
    probe_path_ = code == ErrorCode::kConnect || code == ErrorCode::kResolve;
    spdlog::warn("[{}] reconnect failed: {}", host_.alias, last_error_);
    ScheduleReconnect();
    return;
  }
  Status attached = AttachSession(std::move(*result));
  if (!attached.ok()) {
    last_error_ = attached.error().ToString();
    spdlog::warn("[{}] reconnect failed: {}", host_.alias, last_error_);
    ScheduleReconnect();
    return;
  }
  ++reconnects_;
  backoff_.Reset();
  probe_path_ = true;
  spdlog::info("[{}] link is back (reconnect #{})", host_.alias, reconnects_);
}

void HostDaemon::OnLinkTick() {
  auto now = std::chrono::steady_clock::now();
  auto boot = BootTime();
  // Slept: the boot clock ran on while the monotonic one stood still. Stopped (SIGSTOP,
  // a starved machine): the tick itself came seconds late. Either way the silence we saw
  // meanwhile says nothing about the link, and the keepalive judges it afresh.
  bool woke = (boot - last_tick_boot_) - (now - last_tick_mono_) > std::chrono::seconds(2);
  bool stalled = now - last_tick_mono_ > std::chrono::seconds(2);
  if ((woke || stalled) && link_ && keepalive_) {
    // Bytes that came in meanwhile count first.
    last_in_bytes_ = link_->bytes_in();
    keepalive_->Resume(now);
  }
  last_tick_mono_ = now;
  last_tick_boot_ = boot;
  if (woke) {
    spdlog::info("[{}] the machine woke from sleep: checking the link now", host_.alias);
    if (!link_ && reconnect_timer_ != 0) {
      loop_.CancelTimer(reconnect_timer_);
      reconnect_timer_ = 0;
      backoff_.Reset();
      ScheduleReconnect();
    }
    if (link_) requests_.SendKeepalive();  // an answer, or the keepalive's verdict, soon
  }
  if (!link_) ProbeReachability(now);
  for (auto& fwd : forwards_) {
    fwd->OnTick(now);
    fwd->SampleRate(now);
  }
  CheckExtraLinks(now);
  lanes_.Check(now);
  EnsureLanes(now);
  if (link_) requests_.Poll();
  if (link_ && keepalive_) {
    NoteBytesReceived(now);
    switch (keepalive_->Tick(now)) {
      case Keepalive::Action::kNone:
        break;
      case Keepalive::Action::kSendProbe:
        requests_.SendKeepalive();
        break;
      case Keepalive::Action::kDead: {
        auto acks = net::PeerAcknowledges(link_->session().fd(), keepalive_->interval());
        bool busy = acks.value_or(false) &&
                    (!server_busy_since_ || now - *server_busy_since_ < kBusyServerGrace);
        if (busy) {
          if (!server_busy_since_) {
            server_busy_since_ = now;
            spdlog::warn(
                "[{}] no answer from sshd for {} s, but the server's TCP acknowledges: "
                "busy, not gone; waiting up to {} s more",
                host_.alias, keepalive_->dead_after().count() / 1000, kBusyServerGrace.count());
          }
          keepalive_->Resume(now);
          break;
        }
        auto silent = keepalive_->dead_after() +
                      (server_busy_since_ ? now - *server_busy_since_ : std::chrono::seconds(0));
        LinkLost("no answer from the server for " +
                 std::to_string(std::chrono::duration_cast<std::chrono::seconds>(silent).count()) +
                 " s");
        break;
      }
    }
  }
  loop_.AddTimer(kLinkTick, [this] { OnLinkTick(); });
}

void HostDaemon::ProbeReachability(std::chrono::steady_clock::time_point now) {
  if (!probe_path_ || probe_in_flight_ || connector_->running()) return;
  if (now - last_probe_ < kReachabilityProbe) return;
  last_probe_ = now;
  // Through jump hosts, the first hop is what we can reach directly.
  const config::HostConfig& first = host_.jump_chain.empty() ? host_ : host_.jump_chain.front();
  probe_in_flight_ = true;
  connects_->Connect(first.hostname, first.port, "", kReachabilityProbe,
                     [this](Result<UniqueFd> socket) {
                       probe_in_flight_ = false;
                       if (!socket.ok() || link_ || connector_->running()) return;
                       if (reconnect_timer_ == 0) return;
                       spdlog::info("[{}] the server answers again: reconnecting now", host_.alias);
                       loop_.CancelTimer(reconnect_timer_);
                       reconnect_timer_ = 0;
                       Redial(std::move(*socket));
                     });
}

void HostDaemon::OnMainLinkInput() {
  // Any byte is life, and timed here rather than on the next tick: the round-trip time of
  // a keepalive is then measured to the wake-up, not to 250 ms steps.
  NoteBytesReceived(std::chrono::steady_clock::now());
  if (!link_->connected()) LinkLost(link_->EndReason());
}

void HostDaemon::OnExtraLinkInput() {
  for (size_t i = 0; i < extra_links_.size();) {
    if (extra_links_[i].link->connected()) {
      ++i;
      continue;
    }
    ssh_session dead = extra_links_[i].link->raw();
    for (auto& [id, s] : sessions_) {
      if (s->session() == dead) s->Abort("an extra connection to " + host_.alias + " was lost");
    }
    std::erase_if(sessions_, [](const auto& kv) { return kv.second->done(); });
    session_limit_.erase(dead);
    extra_links_.erase(extra_links_.begin() + static_cast<long>(i));
  }
}

void HostDaemon::AfterIteration() {
  if (!link_) return;
  requests_.Poll();
  ServeAccepted();
  pumps_->ServiceDirty();
  ServiceSessions();
  ServeAccepted();  // reading the channels may have polled the session
  link_->UpdateWriteInterest();
  for (auto& extra : extra_links_) extra.link->UpdateWriteInterest();
}

void HostDaemon::ServiceSessions() {
  // A session's callbacks may end others (EndSession): iterate over ids.
  std::vector<uint32_t> ids;
  for (const auto& [id, session] : sessions_) ids.push_back(id);
  bool parked = false;
  bool ended = false;
  for (uint32_t id : ids) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;
    ExecSession& s = *it->second;
    ssh_session link = s.session();
    s.Service();
    if (s.parked() && s.refused_for_max_sessions()) {
      // sshd's MaxSessions: this connection holds at least as many sessions as sshd has
      // confirmed on it. Only those count: sessions parked here earlier hold nothing, and
      // opens still in flight may be refused too. sshd may also still hold sessions that
      // ended here (their close crosses the refusal), so what is seen can be below the
      // limit but never above it: the limit is the largest count seen.
      size_t confirmed = 0;
      size_t asked = 0;
      for (const auto& [other_id, other] : sessions_) {
        if (other_id == id || other->session() != link) continue;
        confirmed += other->holds_session() ? 1 : 0;
        asked += other->holds_or_opens_session() ? 1 : 0;
      }
      auto known = session_limit_.find(link);
      if (asked == 0 && known == session_limit_.end()) {
        // Refused with nothing else open or opening: not MaxSessions, a policy.
        s.Abort("the server refused a session: " + s.refusal());
      } else {
        size_t limit = std::max<size_t>(confirmed, 1);
        if (known == session_limit_.end() || known->second < limit) {
          session_limit_[link] = limit;
          spdlog::info("[{}] the server allows {} sessions per connection; using another",
                       host_.alias, limit);
        }
        // Not on this connection again until one of its sessions ends (or, if it was
        // sshd's backlog of closes, a moment later): see PlaceParked.
        refused_on_[id] = link;
      }
    }
    parked |= s.parked();
    if (s.done()) {
      sessions_.erase(id);
      ended = true;
    }
  }
  std::erase_if(refused_on_, [this](const auto& kv) { return sessions_.count(kv.first) == 0; });
  if (parked || ended) PlaceParked();
}

ssh_session HostDaemon::PickLink(ssh_session avoid) {
  std::vector<ssh_session> links;
  if (link_) links.push_back(link_->raw());
  for (const auto& l : extra_links_) links.push_back(l.link->raw());
  for (ssh_session link : links) {
    if (link == avoid) continue;
    auto limit = session_limit_.find(link);
    if (limit == session_limit_.end()) return link;
    size_t open = 0;
    for (const auto& [id, s] : sessions_) {
      if (s->session() == link && s->holds_or_opens_session()) ++open;
    }
    if (open < limit->second) return link;
  }
  return nullptr;
}

void HostDaemon::PlaceParked() {
  // Over a snapshot of ids: a session's callbacks may end sessions (EndSession).
  std::vector<uint32_t> parked;
  for (const auto& [id, s] : sessions_) {
    if (s->parked()) parked.push_back(id);
  }
  bool waiting = false;
  for (uint32_t id : parked) {
    auto it = sessions_.find(id);
    if (it == sessions_.end() || !it->second->parked()) continue;
    auto refused = refused_on_.find(id);
    ssh_session link = PickLink(refused == refused_on_.end() ? nullptr : refused->second);
    if (link == nullptr) {
      waiting = true;
      continue;  // another one may still fit where this one was refused
    }
    refused_on_.erase(id);
    ExecSession& s = *it->second;
    s.Rebind(link);
    s.Service();
  }
  if (!waiting || !link_) return;
  // Parked sessions are placed again when a session ends or a connection comes. A refusal
  // can also come from sshd's backlog of closes (sessions that ended here but whose close
  // sshd had not yet read), which neither event marks: forget the refusals and try again
  // shortly, bounded to one retry in flight.
  if (!place_retry_armed_) {
    place_retry_armed_ = true;
    loop_.AddTimer(kParkedRetry, [this] {
      place_retry_armed_ = false;
      refused_on_.clear();
      PlaceParked();
    });
  }
  if (extra_links_.size() >= kMaxExtraLinks) return;  // they wait for a session to end
  if (extra_connector_->running()) return;
  spdlog::info("[{}] opening another connection for sessions ({} so far)", host_.alias,
               extra_links_.size() + 1);
  ssh::ConnectOptions options;
  options.probe = false;
  extra_connector_->Start(RedialHost(), options);
}

void HostDaemon::OnExtraLink(Result<std::unique_ptr<ssh::Session>> result) {
  Result<std::unique_ptr<ssh::Link>> link = MakeError("link", "the main connection is down");
  if (result.ok() && link_) {
    link = ssh::Link::Open(loop_, std::move(*result), {.dead_after = DeadAfter()},
                           [this] { OnExtraLinkInput(); });
  } else if (!result.ok()) {
    link = result.take_error();
  }
  if (!link.ok()) {
    std::string why = link.error().ToString();
    spdlog::warn("[{}] another connection for sessions failed: {}", host_.alias, why);
    // Sessions that cannot get a connection fail (unless one ends and frees a slot).
    bool any_extra = !extra_links_.empty();
    for (auto& [id, s] : sessions_) {
      if (s->parked() && !any_extra) {
        s->Abort("sshd's MaxSessions is reached and another connection failed: " + why);
      }
    }
    std::erase_if(sessions_, [](const auto& kv) { return kv.second->done(); });
    return;
  }
  extra_links_.push_back(ExtraLink{std::move(*link), std::chrono::steady_clock::now()});
  PlaceParked();
}

void HostDaemon::DropExtraLinks(const std::string& why) {
  for (auto& extra : extra_links_) {
    ssh_session raw = extra.link->raw();
    for (auto& [id, s] : sessions_) {
      if (s->session() == raw) s->Abort(why);
    }
    session_limit_.erase(raw);
  }
  std::erase_if(sessions_, [](const auto& kv) { return kv.second->done(); });
  extra_links_.clear();
}

void HostDaemon::CheckExtraLinks(std::chrono::steady_clock::time_point now) {
  for (size_t i = 0; i < extra_links_.size();) {
    ssh_session raw = extra_links_[i].link->raw();
    bool used = false;
    for (const auto& [id, s] : sessions_) used |= s->session() == raw;
    if (used) extra_links_[i].idle_since = now;
    if (!used && now - extra_links_[i].idle_since >= kExtraLinkIdle) {
      session_limit_.erase(raw);
      extra_links_.erase(extra_links_.begin() + static_cast<long>(i));
      continue;
    }
    ++i;
  }
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
  lanes_.Ensure(now, RedialHost(), options, DeadAfter());
}

uint32_t HostDaemon::StartExec(ExecRequest request, UniqueFd in, UniqueFd out, UniqueFd err,
                               SessionEvents events, const std::string& what) {
  uint32_t id = next_session_++;
  std::string prefix = host_.alias + " session #" + std::to_string(id);
  if (!link_) {
    // Answered on the next wake-up: the caller is still setting up.
    auto started = std::move(events.started);
    loop_.AddTimer(std::chrono::milliseconds(0), [started, alias = host_.alias] {
      started(false, "the connection to " + alias + " is down; tether is reconnecting", false);
    });
    return id;
  }
  spdlog::info("[{}] {}", prefix, what);
  auto s = std::make_unique<ExecSession>(loop_, std::move(in), std::move(out), std::move(err),
                                         std::move(request), std::move(events.started),
                                         std::move(events.finished), prefix);
  // Placed (or parked) on the next wake-up: the caller is still setting up.
  sessions_.emplace(id, std::move(s));
  loop_.AddTimer(std::chrono::milliseconds(0), [this] { PlaceParked(); });
  return id;
}

uint32_t HostDaemon::StartSession(const control::mux::NewSession& request, UniqueFd in,
                                  UniqueFd out, UniqueFd err, SessionEvents events) {
  ExecRequest exec;
  exec.command = request.command;
  exec.subsystem = request.subsystem;
  exec.pty = request.want_tty;
  exec.term = request.term;
  exec.env = request.env;
  std::string what = request.subsystem         ? "subsystem " + request.command
                     : request.command.empty() ? std::string("shell")
                                               : "exec (" + std::to_string(request.command.size()) +
                                                     " bytes of command line)";
  return StartExec(std::move(exec), std::move(in), std::move(out), std::move(err),
                   std::move(events), what);
}

uint32_t HostDaemon::StartStdioForward(const control::mux::StdioForward& request, UniqueFd in,
                                       UniqueFd out, SessionEvents events) {
  ExecRequest exec;
  exec.stdio_forward = true;
  exec.forward_host = request.host;
  exec.forward_port = static_cast<uint16_t>(request.port);
  return StartExec(std::move(exec), std::move(in), std::move(out), UniqueFd(), std::move(events),
                   "stdio forward to " + net::FormatHostPort(request.host, exec.forward_port));
}

void HostDaemon::EndSession(uint32_t id) {
  // The mux client went away, often from inside the session's own callbacks (telling the
  // client its command started fails on a socket it shut down): erasing the session here
  // would free it under its own Service and change sessions_ under loops over it. It is
  // detached now and erased on the next round.
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  it->second->Detach();
  ReapSessionsSoon();
}

void HostDaemon::ReapSessionsSoon() {
  if (reap_scheduled_) return;
  reap_scheduled_ = true;
  // Timers run from the top of the loop, never inside a session's call.
  loop_.AddTimer(std::chrono::milliseconds(0), [this] {
    reap_scheduled_ = false;
    std::erase_if(sessions_, [](const auto& kv) { return kv.second->done(); });
  });
}

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

int HostDaemon::OnMessage(ssh_session, ssh_message message, void* self_ptr) {
  auto* self = static_cast<HostDaemon*>(self_ptr);
  if (ssh_message_type(message) != SSH_REQUEST_CHANNEL_OPEN ||
      ssh_message_subtype(message) != SSH_CHANNEL_FORWARDED_TCPIP) {
    return 1;  // libssh refuses it (agent, X11, anything we did not ask for)
  }
  const char* address = ssh_message_channel_request_open_destination(message);
  int port = ssh_message_channel_request_open_destination_port(message);
  bool ours = false;
  for (const auto& f : self->forwards_) {
    ours |= f->AcceptsServerChannel(address ? address : "", static_cast<uint16_t>(port));
  }
  if (!ours) {
    spdlog::warn("[{}] the server opened a connection for {}:{}, which we do not forward: refused",
                 self->host_.alias, address ? address : "", port);
    return 1;
  }
  ssh_channel channel = ssh_message_channel_request_open_reply_accept(message);
  if (channel == nullptr) return 0;
  const char* origin = ssh_message_channel_request_open_originator(message);
  self->accepted_.push_back(
      Accepted{channel, address ? address : "", static_cast<uint16_t>(port), origin ? origin : "",
               static_cast<uint16_t>(ssh_message_channel_request_open_originator_port(message))});
  return 0;
}

void HostDaemon::ServeAccepted() {
  if (accepted_.empty()) return;
  std::vector<Accepted> batch;
  batch.swap(accepted_);
  for (auto& a : batch) {
    forward::Forward* owner = nullptr;
    for (const auto& f : forwards_) {
      if (f->AcceptsServerChannel(a.address, a.port)) owner = f.get();
    }
    if (owner == nullptr) {
      ssh_channel_free(a.channel);  // cancelled meanwhile
      continue;
    }
    owner->ServeServerChannel(a.channel, a.origin_host, a.origin_port);
  }
}

void HostDaemon::Shutdown(const std::string& why) {
  spdlog::info("[{}] stopping: {}", host_.alias, why);
  loop_.Stop();
}

Status HostDaemon::Run() {
  Status s = loop_.Run();
  for (auto& [id, session] : sessions_) session->Abort("tether down: the daemon stopped");
  sessions_.clear();
  mux_.reset();
  pumps_->Clear();
  for (auto& fwd : forwards_) fwd->Stop();
  control_.reset();
  ::unlink(state_.SocketPath(host_.alias).c_str());
  return s;
}

DaemonStatus HostDaemon::Snapshot() const {
  DaemonStatus st;
  st.host = host_.alias;
  st.user = host_.user;
  st.hostname = host_.hostname;
  st.port = host_.port;
  st.state = link_state_;
  st.pid = ::getpid();
  st.uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  if (keepalive_) st.rtt = keepalive_->rtt();
  st.reconnects = reconnects_;
  st.last_error = last_error_;
  st.remote_system = remote_system_;
  if (link_) {
    st.cipher = link_->session().cipher();
    st.server_requests = requests_.pending();
  }
  st.window_budget_used = budget_.used();
  st.lanes_wanted = lanes_.wanted();
  st.lanes_off = lanes_.off();
  st.lanes = lanes_.Status();
  for (const auto& [id, s] : sessions_) st.sessions_waiting += s->parked() ? 1 : 0;
  st.sessions_live = sessions_.size() - st.sessions_waiting;
  st.connections = (link_ ? 1 : 0) + extra_links_.size();
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
  forwards_.erase(it);
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
  *added = true;
  return forwards_.back().get();
}

}  // namespace tether::daemon
