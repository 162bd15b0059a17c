// tether up HOST [-L spec]...: connect (prompting on the terminal if need be), bind every
// forward, then go to the background and return once all of them listen.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>
#include <tuple>

#include "cli/agent.h"
#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/format.h"
#include "cli/login.h"
#include "cli/server_ports.h"
#include "cli/ssh_include.h"
#include "cli/start_options.h"
#include "common/log.h"
#include "common/process.h"
#include "config/ssh_config.h"
#include "config/tether_config.h"
#include "control/control_client.h"
#include "daemon/host_daemon.h"
#include "daemon/launch.h"
#include "daemon/state_dir.h"
#include "forward/port_watch.h"
#include "net/address_scope.h"
#include "ssh/prompter.h"
#include "ssh/session.h"

namespace tether::cli {
namespace {

// How long `up` waits for the background daemon to say it is ready.
constexpr std::chrono::milliseconds kReadyTimeout{30000};

Result<config::HostConfig> ResolveHost(const GlobalOptions& global, const UpOptions& options,
                                       const config::TetherConfig& tether_config) {
  config::ReadOptions read;
  read.config_file = global.config_file;
  read.options = options.options;
  if (!options.jump.empty()) read.options.insert(read.options.begin(), "ProxyJump=" + options.jump);
  auto host = config::ReadHostConfig(options.destination, read);
  if (!host.ok()) return host;
  Status chain = config::ResolveJumpChain(*host, read);
  if (!chain.ok()) return chain.take_error();
  // The daemon is known by what the user typed (`gpu`, `alice@10.0.0.5:2222`): that is
  // what `status` shows and what `down` takes.
  host->alias = options.destination;
  // Precedence: command line > tether's config.toml > ssh_config.
  tether_config.ApplyTo(*host);
  if (!options.user.empty()) host->user = options.user;
  if (options.port != 0) host->port = static_cast<uint16_t>(options.port);
  if (!options.identity_files.empty()) {
    host->identity_files.insert(host->identity_files.begin(), options.identity_files.begin(),
                                options.identity_files.end());
    host->identity_files_default = false;
  }
  return host;
}

// Forwards from the command line, the host's profile and its ssh_config lines, in that
// order of precedence (a later one that listens where an earlier one does is dropped).
Result<std::vector<config::ForwardSpec>> CollectForwards(
    const UpOptions& options, const config::HostConfig& host,
    const config::TetherConfig& tether_config) {
  std::vector<config::ForwardSpec> cli;
  const std::pair<config::ForwardKind, const std::vector<std::string>*> groups[] = {
      {config::ForwardKind::kLocal, &options.local_forwards},
      {config::ForwardKind::kRemote, &options.remote_forwards},
      {config::ForwardKind::kDynamic, &options.dynamic_forwards}};
  for (const auto& [kind, texts] : groups) {
    for (const auto& text : *texts) {
      auto spec = config::ParseForwardSpec(kind, text);
      if (!spec.ok()) return spec.take_error();
      cli.push_back(*spec);
    }
  }
  std::vector<config::ForwardSpec> profile;
  if (const config::HostProfile* p = tether_config.ProfileFor(host.alias)) profile = p->forwards;
  std::vector<config::ForwardSpec> specs;
  for (const auto& spec : config::MergeForwards({cli, profile, host.forwards})) {
    if (!daemon::HostDaemon::Supports(spec)) {
      std::fprintf(stderr, "tether: %s: %s skipped: not supported by this version\n",
                   host.alias.c_str(), spec.ToFlagString().c_str());
      continue;
    }
    specs.push_back(spec);
  }
  return specs;
}

void PrintForwards(const daemon::HostDaemon& d, const config::HostConfig& host, pid_t pid) {
  std::printf("%s is up (pid %d): %s@%s:%u\n", host.alias.c_str(), static_cast<int>(pid),
              host.user.c_str(), host.hostname.c_str(), host.port);
  nlohmann::json status = d.StatusJson();
  for (const auto& f : status["forwards"]) {
    std::printf("  %s  (%s)\n", ForwardFlagLine(f).c_str(), f.value("state", "").c_str());
    std::string error = f.value("error", "");
    if (!error.empty()) std::fprintf(stderr, "tether: %s: %s\n", host.alias.c_str(), error.c_str());
  }
  std::fflush(stdout);
}

// Shows what an already running daemon serves. A daemon still connecting (another
// `tether up` racing us holds the lock) is waited for, bounded, saying so once.
// The forwards asked for now that it does not have yet are added to it.
daemon::HostDaemon::ProxyOptions ProxyOptionsOf(const UpOptions& options) {
  daemon::HostDaemon::ProxyOptions proxy;
  proxy.port = static_cast<uint16_t>(options.proxy_port);
  proxy.open = options.proxy_open;
  proxy.upstream = options.upstream;
  return proxy;
}

// After `up --proxy`: a server proxy the server refused because another account holds
// its port makes `up` fail, naming the port and the account and offering a port free on
// the server now. The proxy keeps asking in the background (status shows who holds the
// port), and `up --proxy=FREE` replaces it. Exit status.
int SettleProxy(const daemon::StateDir& state, const std::string& alias, uint16_t wanted) {
  auto status =
      control::Request(state.SocketPath(alias), {{"cmd", "status"}}, std::chrono::seconds(5));
  if (!status.ok()) return 0;  // AddForwardsToRunning said what is wrong
  for (const auto& f : status->value("forwards", nlohmann::json::array())) {
    if (f.value("kind", "") != "proxy") continue;
    const std::string st = f.value("state", "");
    if (st == "listening") return 0;
    if (st != "retrying") return 0;  // the link is not up: nothing to ask the server yet
    const uint16_t port = ListenPort(f.value("listen", ""));
    auto check =
        CheckServerPort(DaemonServerCommand(state, alias), port != 0 ? port : wanted, false);
    if (!check.ok() || check->holder.holding != PortHolding::kOther) return 0;
    std::string offer = check->free_port
                            ? "use --proxy=" + std::to_string(*check->free_port) +
                                  " (free on the server now): tether up " + alias +
                                  " --proxy=" + std::to_string(*check->free_port)
                            : "choose another port: tether up " + alias + " --proxy=PORT";
    PrintError(MakeError("proxy",
                         alias + ": " + DescribeHolder(port, check->holder) +
                             ": nothing of yours is sent to it; the server proxy is not "
                             "usable (tether env and run refuse) until the port frees",
                         offer));
    return 1;
  }
  return 0;
}

// What of the command line only takes effect when a daemon starts (or its server proxy).
StartOptions StartOptionsOf(const UpOptions& given, const UpOptions& options,
                            const config::HostConfig& host) {
  StartOptions start;
  if (!given.laptop_network.empty()) start.laptop_network = given.laptop_network;
  if (given.lanes >= 0) start.lanes = given.lanes;
  if (!given.user.empty()) start.user = host.user;
  if (given.port != 0) start.port = host.port;
  if (!given.jump.empty()) start.jump = host.proxy_jump;
  start.identity_files = given.identity_files;
  start.ssh_options = given.options;
  if (given.proxy_open && options.proxy_port != 0) {
    start.proxy_open_port = static_cast<uint16_t>(options.proxy_port);
  }
  start.auto_forward = given.auto_forward;
  start.fast_exec = given.fast_exec;
  start.auto_forward = given.auto_forward || given.auto_forward_allow || given.auto_forward_deny ||
                       given.auto_forward_max;
  // Written as the daemon's status does (checked when the command line was read).
  for (auto [text, out] : {std::pair{&given.auto_forward_allow, &start.auto_forward_allow},
                           std::pair{&given.auto_forward_deny, &start.auto_forward_deny}}) {
    if (!*text) continue;
    auto parsed = forward::ParsePortRanges(**text);
    if (parsed.ok()) *out = forward::FormatPortRanges(*parsed);
  }
  start.auto_forward_max = given.auto_forward_max;
  return start;
}

int ShowRunning(const daemon::StateDir& state, const std::string& alias, pid_t pid,
                const std::vector<config::ForwardSpec>& specs, const UpOptions& options,
                const StartOptions& start, bool batch_mode) {
  constexpr auto kPoll = std::chrono::milliseconds(100);
  constexpr int kMaxPolls = 300;  // 30 s: a connection that needs a person's answer
  Result<nlohmann::json> reply = MakeError("control", "not asked yet");
  for (int i = 0; i < kMaxPolls; ++i) {
    reply = control::Request(state.SocketPath(alias), {{"cmd", "status"}}, std::chrono::seconds(3));
    if (reply.ok() || !daemon::CheckRunning(state.PidPath(alias)).running) break;
    if (i == 0) {
      std::fprintf(stderr, "tether: %s: another `tether up` (pid %d) is connecting; waiting...\n",
                   alias.c_str(), static_cast<int>(pid));
    }
    std::this_thread::sleep_for(kPoll);
  }
  if (!reply.ok()) {
    std::fprintf(stderr, "tether: %s: the daemon (pid %d) does not answer: %s\n", alias.c_str(),
                 static_cast<int>(pid), reply.error().message.c_str());
    return 1;
  }
  // Start-time options that differ from what it runs: said, and nothing is changed.
  if (auto conflict = StartOptionConflicts(alias, *reply, start)) {
    PrintError(*conflict);
    return 1;
  }
  if (reply->value("state", "") == "needs-login") {
    // The same daemon logs in again, asking here; its forwards and counters stay.
    std::fprintf(stderr, "tether: %s: the daemon (pid %d) waits for a login\n", alias.c_str(),
                 reply->value("pid", 0));
    ssh::TtyPrompter prompter(batch_mode);
    if (int login = LoginThroughDaemon(state, alias, prompter); login != 0) return login;
  }
  std::printf("%s is already up (pid %d)\n", alias.c_str(), reply->value("pid", 0));
  int code = 0;
  if (options.proxy_port != 0) {
    // A server proxy on another port that does not listen (its port taken on the server)
    // gives way to the one asked for now.
    for (const auto& f : reply->value("forwards", nlohmann::json::array())) {
      const int port = ListenPort(f.value("listen", ""));
      if (f.value("kind", "") != "proxy" || port == options.proxy_port ||
          f.value("state", "") == "listening") {
        continue;
      }
      (void)control::Request(
          state.SocketPath(alias),
          {{"cmd", "cancel"}, {"kind", "remote"}, {"spec", std::to_string(port)}},
          std::chrono::seconds(5));
      std::printf("  the server proxy on port %d (%s) gives way to port %d\n", port,
                  f.value("state", "").c_str(), options.proxy_port);
    }
    auto added = control::Request(state.SocketPath(alias),
                                  {{"cmd", "proxy"},
                                   {"port", options.proxy_port},
                                   {"open", options.proxy_open},
                                   {"upstream", options.upstream}},
                                  std::chrono::seconds(5));
    if (!added.ok() || !added->value("ok", false)) {
      std::fprintf(stderr, "tether: %s: %s\n", alias.c_str(),
                   added.ok() ? added->value("error", "").c_str() : added.error().message.c_str());
      code = 1;
    }
  }
  code = std::max(code, AddForwardsToRunning(state, daemon::FileNameFor(alias), specs));
  if (options.proxy_port != 0) {
    code = std::max(code, SettleProxy(state, alias, static_cast<uint16_t>(options.proxy_port)));
  }
  return code;
}

}  // namespace

int RunUp(const GlobalOptions& global, const UpOptions& given) {
  UpOptions options = given;
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  auto tether_config = config::TetherConfig::Load(config::TetherConfig::DefaultPath());
  if (!tether_config.ok()) {
    PrintError(tether_config.error());
    return 1;
  }
  auto host = ResolveHost(global, options, *tether_config);
  if (!host.ok()) {
    PrintError(host.error());
    return 1;
  }
  // The server proxy from config.toml, unless the command line said otherwise.
  config::Settings settings = tether_config->SettingsFor(host->alias);
  if (options.proxy_port == 0 && settings.proxy_port.value_or(0) != 0) {
    options.proxy_port = *settings.proxy_port;
  }
  if (options.upstream.empty() && settings.upstream) options.upstream = *settings.upstream;
  if (!options.proxy_open && settings.proxy_open) options.proxy_open = *settings.proxy_open;
  if (options.lanes < 0) options.lanes = settings.lanes.value_or(daemon::DefaultLanes());
  if (options.laptop_network.empty()) {
    options.laptop_network = settings.laptop_network.value_or("public");
  }
  const net::Reach reach = net::ParseReach(options.laptop_network).value_or(net::Reach::kPublic);
  // The auto-forward flags: each implies --auto-forward and wins over config.toml.
  for (auto [flag, text] : {std::pair{"--auto-forward-allow", &options.auto_forward_allow},
                            std::pair{"--auto-forward-deny", &options.auto_forward_deny}}) {
    if (!*text) continue;
    auto parsed = forward::ParsePortRanges(**text);
    if (!parsed.ok()) {
      PrintError(MakeError("usage", std::string(flag) + ": " + parsed.error().message,
                           parsed.error().hint));
      return 2;
    }
  }
  if (options.auto_forward_max &&
      (*options.auto_forward_max < 0 || *options.auto_forward_max > 1000)) {
    PrintError(MakeError("usage", "--auto-forward-max needs a number from 0 to 1000"));
    return 2;
  }
  if (options.auto_forward_allow || options.auto_forward_deny || options.auto_forward_max) {
    options.auto_forward = true;
  }
  auto specs = CollectForwards(options, *host, *tether_config);
  if (!specs.ok()) {
    PrintError(specs.error());
    return 1;
  }
  const std::string& alias = host->alias;
  if (options.agent_port != 0 && options.agent_port != kAgentFromRecord &&
      (options.agent_port < 1 || options.agent_port > 65535)) {
    PrintError(MakeError("usage", "--agent=PORT needs a port from 1 to 65535"));
    return 2;
  }
  if (options.agent_port != 0) {
    // The server's tether-agent, on a unix socket only we can open (state dir 0700), to
    // its own unix socket on the server (direct-streamlocal) or an older install's port.
    AgentRecord where;
    if (options.agent_port == kAgentFromRecord) {
      auto record = LoadAgentRecord(alias);
      if (!record.ok()) {
        Error e = record.take_error();
        e.hint += " (or --agent=PORT for an agent on the server's 127.0.0.1:PORT)";
        PrintError(e);
        return 1;
      }
      where = *record;
    } else {
      where.port = options.agent_port;
    }
    config::ForwardSpec agent = AgentForwardSpec(*state, alias, where);
    specs->push_back(agent);
  }

  daemon::PidLock lock;
  auto lock_outcome = daemon::PidLock::TryAcquire(state->PidPath(alias), &lock);
  // `status` and `down` take the lock shared for an instant to see whether a daemon
  // lives: a held lock is believed only if it is still held a moment later.
  for (int retry = 0; retry < 3 && lock_outcome.ok() && !lock_outcome->acquired; ++retry) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    lock_outcome = daemon::PidLock::TryAcquire(state->PidPath(alias), &lock);
  }
  if (!lock_outcome.ok()) {
    PrintError(lock_outcome.error());
    return 1;
  }
  if (!lock_outcome->acquired)
    return ShowRunning(*state, alias, lock_outcome->holder, *specs, options,
                       StartOptionsOf(given, options, *host), host->batch_mode);

  // Our pid until the daemon writes its own: `status` can tell who is connecting.
  (void)lock.WritePid(::getpid());
  ssh::TtyPrompter prompter(host->batch_mode);
  std::string via;
  for (const auto& hop : host->jump_chain) via += (via.empty() ? " via " : ", ") + hop.alias;
  std::fprintf(stderr, "tether: connecting to %s (%s@%s:%u%s)...\n", alias.c_str(),
               host->user.c_str(), host->hostname.c_str(), host->port, via.c_str());
  ssh::ConnectOptions connect;
  connect.log_verbosity = global.verbosity >= 3 ? global.verbosity - 2 : 0;
  auto session = ssh::Session::Connect(*host, prompter, connect);
  if (!session.ok()) {
    PrintError(session.error());
    state->RemoveFiles(alias);
    return 1;
  }

  daemon::HostDaemon d(*host, *state);
  d.SetLanes(options.lanes);
  d.SetLaptopNetwork(reach);
  d.SetSshOptions(options.options);
  d.SetNotify(settings.notify.value_or(true));
  if (options.fast_exec || settings.fast_exec.value_or(false)) d.SetFastExec(AgentBinaryPath());
  if (options.auto_forward || settings.auto_forward.value_or(false)) {
    forward::AutoForwardPolicy policy;
    // The command line's, else config.toml's (both checked when they were read).
    for (auto [flag, key, ranges] :
         {std::tuple{&options.auto_forward_allow, &settings.auto_forward_allow, &policy.allow},
          std::tuple{&options.auto_forward_deny, &settings.auto_forward_deny, &policy.deny}}) {
      const std::optional<std::string>& text = *flag ? *flag : *key;
      if (!text) continue;
      auto parsed = forward::ParsePortRanges(*text);
      if (parsed.ok()) *ranges = std::move(*parsed);
    }
    if (auto max =
            options.auto_forward_max ? options.auto_forward_max : settings.auto_forward_max) {
      policy.max = static_cast<size_t>(*max);
    }
    d.SetAutoForward(std::move(policy));
  }
  if (reach != net::Reach::kPublic) {
    std::fprintf(stderr,
                 "tether: warning: programs on %s can reach the laptop's %s through the server "
                 "proxy and reverse SOCKS (laptop_network %s)\n",
                 host->alias.c_str(),
                 reach == net::Reach::kAll ? "loopback, link-local and private networks"
                                           : "private networks",
                 net::ReachName(reach));
  }
  Status bound = d.BindForwards(*specs);
  if (bound.ok() && options.proxy_port != 0) bound = d.EnableProxy(ProxyOptionsOf(options));
  if (!bound.ok()) {
    Error e = bound.take_error();
    e.message = alias + ": " + e.message;
    PrintError(e);
    state->RemoveFiles(alias);
    return 1;
  }

  if (options.foreground) {
    InitLogging("", global.verbosity);
    Status s = lock.WritePid(::getpid());
    if (s.ok()) s = d.Start(std::move(*session));
    if (!s.ok()) {
      PrintError(s.error());
      state->RemoveFiles(alias);
      return 1;
    }
    PrintForwards(d, *host, ::getpid());
    RefreshHostBlocks(*state);
    Status stopped = d.Run();
    state->RemoveFiles(alias);
    RefreshHostBlocks(*state);
    lock.Release();
    if (!stopped.ok()) {
      PrintError(stopped.error());
      return 1;
    }
    return 0;
  }

  // Only this thread survives fork(): jump-host relays stop here and start again in the
  // daemon; the parent never touches the session again.
  (*session)->PauseRelays();
  daemon::LaunchOptions launch;
  launch.name = alias;
  launch.log_path = state->LogPath(alias);
  launch.ready_timeout = kReadyTimeout;
  auto child = daemon::Launch(launch, [&](daemon::ReadySignal& ready) {
    // The daemon: its own session, no terminal, logs to HOST.log.
    InitLogging(launch.log_path, global.verbosity);
    (*session)->ResumeRelays();
    Status s = lock.WritePid(::getpid());
    if (s.ok()) s = d.Start(std::move(*session));
    ready.Report(s);
    int code = 1;
    if (s.ok()) {
      Status stopped = d.Run();
      code = stopped.ok() ? 0 : 1;
      if (!stopped.ok()) spdlog::error("{}", stopped.error().ToString());
    }
    state->RemoveFiles(alias);
    spdlog::shutdown();
    return code;
  });

  // The parent: print the daemon's word and leave without touching the session (it
  // belongs to the daemon now; destructors would disconnect it).
  int code;
  if (child.ok()) {
    // Ask the daemon itself: remote forwards are answered by the server only now.
    std::printf("%s is up (pid %d): %s@%s:%u\n", alias.c_str(), static_cast<int>(*child),
                host->user.c_str(), host->hostname.c_str(), host->port);
    std::fflush(stdout);
    RefreshHostBlocks(*state);  // plain ssh rides it now, if the Include is installed
    code = AddForwardsToRunning(*state, alias, {});
    if (options.proxy_port != 0) {
      code = std::max(code, SettleProxy(*state, alias, static_cast<uint16_t>(options.proxy_port)));
    }
    if (options.proxy_port != 0 && code == 0) {
      std::printf(
          "  the server's programs reach the internet through the laptop once they have "
          "the variables of `tether env %s` (or use `tether run %s -- CMD`)\n",
          alias.c_str(), alias.c_str());
    }
  } else {
    PrintError(child.error());
    code = 1;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(code);
}

}  // namespace tether::cli
