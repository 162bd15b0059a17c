// tether doctor HOST [--json] [--probe URL]: the troubleshooting checklist, walked in
// order. Each check says pass, warn, fail or skip, what it saw, and what to do. It makes a
// connection of its own (strict host key checking, never prompting, nothing written to
// known_hosts) so that it also works when the daemon is down, and asks the daemon what it
// runs. Exit status 1 when any check fails.
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "cli/clock_check.h"
#include "cli/doctor_crash.h"
#include "cli/errors.h"
#include "cli/format.h"
#include "cli/hosts.h"
#include "cli/port_owner.h"
#include "cli/proxy_env.h"
#include "cli/server_port_check.h"
#include "cli/server_ports.h"
#include "config/ssh_config.h"
#include "config/tether_config.h"
#include "control/control_client.h"
#include "daemon/state_dir.h"
#include "net/socket.h"
#include "ssh/command.h"
#include "ssh/host_key.h"
#include "ssh/prompter.h"
#include "ssh/session.h"

namespace tether::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Every remote command doctor runs ends within this, whatever the server does.
constexpr std::chrono::milliseconds kRemoteTimeout{20000};
// A remote command's output beyond this is not read (a check needs a few lines).
constexpr size_t kRemoteMaxOutput = 1u << 20;
constexpr const char* kDefaultProbeUrl = "https://pypi.org/simple/";

struct Check {
  std::string name;
  std::string status;  // pass, warn, fail, skip
  std::string evidence;
  std::string fix;
};

class Report {
 public:
  void Add(std::string name, std::string status, std::string evidence, std::string fix = "") {
    checks_.push_back({std::move(name), std::move(status), std::move(evidence), std::move(fix)});
    if (!json_) Print(checks_.back());
  }
  explicit Report(bool json) : json_(json) {}
  bool failed() const {
    for (const auto& c : checks_) {
      if (c.status == "fail") return true;
    }
    return false;
  }
  json ToJson(const std::string& host) const {
    json checks = json::array();
    for (const auto& c : checks_) {
      checks.push_back(
          {{"name", c.name}, {"status", c.status}, {"evidence", c.evidence}, {"fix", c.fix}});
    }
    return {{"host", host}, {"ok", !failed()}, {"checks", checks}};
  }

 private:
  static void Print(const Check& c) {
    std::string mark = c.status == "pass"   ? "PASS"
                       : c.status == "warn" ? "WARN"
                       : c.status == "skip" ? "SKIP"
                                            : "FAIL";
    std::printf("%s  %s\n", mark.c_str(), c.name.c_str());
    if (!c.evidence.empty()) std::printf("      %s\n", c.evidence.c_str());
    if (!c.fix.empty()) std::printf("      fix: %s\n", c.fix.c_str());
    std::fflush(stdout);
  }
  bool json_;
  std::vector<Check> checks_;
};

// Runs `command` on doctor's (blocking) session, feeding `input` on stdin.
Result<ssh::CommandResult> RunRemote(ssh::Session& s, const std::string& command,
                                     const std::string& input = "") {
  ssh::CommandLimits limits;
  limits.timeout = kRemoteTimeout;
  limits.max_output = kRemoteMaxOutput;
  return ssh::RunCommand(s, command, input, limits);
}

// What a remote command printed on stdout; "" when it could not run.
std::string OutputOf(const Result<ssh::CommandResult>& r) { return r.ok() ? r->out : ""; }

// Whether a remote command ran and exited 0.
bool Succeeded(const Result<ssh::CommandResult>& r) { return r.ok() && r->exit_status == 0; }

std::string Source(const config::HostConfig& h, const std::string& keyword) {
  auto it = h.sources.find(keyword);
  return it == h.sources.end() ? "default" : it->second;
}

std::string Describe(const config::HostConfig& h) {
  std::string s = "HostName " + h.hostname + " (" + Source(h, "HostName") + "); User " + h.user +
                  " (" + Source(h, "User") + "); Port " + std::to_string(h.port) + " (" +
                  Source(h, "Port") + ")";
  std::string keys;
  for (const auto& k : h.identity_files) keys += (keys.empty() ? "" : ", ") + k;
  s += "; IdentityFile " + (keys.empty() ? std::string("none") : keys) + " (" +
       Source(h, "IdentityFile") + ")";
  if (!h.jump_chain.empty()) {
    std::string chain;
    for (const auto& hop : h.jump_chain) {
      chain += (chain.empty() ? "" : " -> ") + hop.alias + " (" + hop.user + "@" + hop.hostname +
               ":" + std::to_string(hop.port) + ")";
    }
    s += "; ProxyJump " + chain + " (" + Source(h, "ProxyJump") + ")";
  }
  return s;
}

// Listening sockets of the server (its /proc/net/tcp*), as ports.
std::vector<uint16_t> ServerListeningPorts(ssh::Session& s) {
  std::vector<uint16_t> ports;
  const std::string out = OutputOf(RunRemote(s, "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"));
  size_t pos = 0;
  // Bounded by the output's size.
  while (pos < out.size()) {
    size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) eol = out.size();
    std::string line = out.substr(pos, eol - pos);
    pos = eol + 1;
    char local[128] = {0}, remote[128] = {0}, st[8] = {0};
    if (std::sscanf(line.c_str(), "%*s %127s %127s %7s", local, remote, st) != 3) continue;
    if (std::string(st) != "0A") continue;
    std::string l(local);
    size_t colon = l.rfind(':');
    if (colon == std::string::npos) continue;
    ports.push_back(static_cast<uint16_t>(std::stoul(l.substr(colon + 1), nullptr, 16)));
  }
  return ports;
}

// Commands over doctor's own session, as server_ports asks them: the standard output, or
// why the command could not run.
ServerCommand OutputOn(ssh::Session& connection) {
  return [&connection](const std::string& command) -> Result<std::string> {
    auto r = RunRemote(connection, command);
    if (!r.ok()) return r.take_error();
    return r->out;
  };
}

// Connections a forward's counters saw: accepted, failed, or refused for any reason.
uint64_t Seen(const json& f) {
  uint64_t n = f.value("total", uint64_t{0}) + f.value("failed", uint64_t{0});
  const json refused = f.value("refused", json::object());
  for (const auto& count : refused) {
    if (count.is_number_unsigned()) n += count.get<uint64_t>();
  }
  return n;
}

// The end-to-end check of remote forward `f`, bound on the server at `port`: a connection
// made there to 127.0.0.1:PORT must reach the laptop's target, and the forward's counters
// tell whether it did. A connection they do not see went to someone else: with sshd's
// "localhost" on ::1 alone, 127.0.0.1 may be another account's. That account is named,
// and a forward the daemon already knows is squatted is not probed at all.
void ProbeRemoteForward(ssh::Session& connection, const daemon::StateDir& state,
                        const std::string& alias, const json& f, uint16_t port, Report& report) {
  const std::string name = "forward " + ForwardFlagLine(f);
  const std::string other_port_fix =
      "forward another port, or ask that account to let go of " + std::to_string(port);
  if (f.contains("squatted_by")) {
    PortHolder holder{PortHolding::kOther, f["squatted_by"].value("uid", uint32_t{0}),
                      f["squatted_by"].value("account", "")};
    report.Add(name, "fail",
               DescribeHolder(port, holder) +
                   ", beside this forward's listener: a connection there may reach that "
                   "account instead (not probed)",
               other_port_fix);
    return;
  }
  auto find = [&](const json& hosts) -> json {
    for (const auto& g :
         hosts.empty() ? json::array() : hosts[0].value("forwards", json::array())) {
      if (g.value("spec", "") == f.value("spec", "") && g.value("kind", "") == "remote") return g;
    }
    return json();
  };
  const std::string connect =
      "bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) + " && sleep 0.3' 2>/dev/null";
  auto probe = RunRemote(connection, connect);
  if (!Succeeded(probe)) {
    report.Add(name, "warn", "bound on the server; could not connect to it there (bash /dev/tcp)");
    return;
  }
  // The daemon counts once the laptop's side answered: asked again for up to 3 s.
  json after = find(CollectStatus(state, alias));
  for (int i = 0; i < 30 && (after.is_null() || Seen(after) <= Seen(f)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    after = find(CollectStatus(state, alias));
  }
  if (after.is_null() || Seen(after) <= Seen(f)) {
    auto check = CheckServerPort(OutputOn(connection), port, true);
    const bool other = check.ok() && check->holder.holding == PortHolding::kOther;
    report.Add(name, "fail",
               "a connection made on the server to 127.0.0.1:" + std::to_string(port) +
                   " did not reach this forward (its counters did not move)" +
                   (check.ok() ? "; " + DescribeHolder(port, check->holder) : std::string("")),
               other ? other_port_fix
                     : "tether forward " + alias + " --cancel -R " + std::to_string(port) +
                           " and add it again");
    return;
  }
  const uint64_t total0 = f.value("total", uint64_t{0});
  const uint64_t total1 = after.value("total", total0);
  if (after.value("failed", uint64_t{0}) > f.value("failed", uint64_t{0})) {
    report.Add(name, "fail",
               "bound on the server, but the laptop's " + f.value("target", "") +
                   " refused the connection",
               "start what should listen on the laptop at " + f.value("target", ""));
  } else if (total1 <= total0) {
    report.Add(name, "warn", "bound on the server; the forward refused the connection from there",
               "`tether status " + alias + "` says why under the table");
  } else {
    report.Add(name, "pass",
               "bound on the server; a connection from there reached the laptop (" +
                   std::to_string(total1 - total0) + " new)");
  }
}

}  // namespace

int RunDoctor(const GlobalOptions& global, const DoctorOptions& options) {
  Report report(options.json);
  const std::string& alias = options.host;
  if (!options.json) std::printf("tether doctor %s\n\n", alias.c_str());

  // 1. The effective configuration, and where each value came from.
  config::ReadOptions read;
  read.config_file = global.config_file;
  auto host = config::ReadHostConfig(alias, read);
  Status chain = host.ok() ? config::ResolveJumpChain(*host, read) : Status::Ok();
  if (!host.ok() || !chain.ok()) {
    const Error& e = host.ok() ? chain.error() : host.error();
    report.Add("configuration", "fail", e.ToString(), e.hint);
    if (options.json) std::printf("%s\n", report.ToJson(alias).dump(2).c_str());
    return 1;
  }
  host->alias = alias;
  auto toml = config::TetherConfig::Load(config::TetherConfig::DefaultPath());
  if (toml.ok()) toml->ApplyTo(*host);
  report.Add("configuration", "pass", Describe(*host));

  // 2-4. The name resolves and TCP reaches the port (the first hop; the later ones are
  // reached through it), the host key, authentication: on one connection of doctor's own
  // that logs in. No bare TCP connect to find out whether the port answers: OpenSSH 9.8+
  // counts every connection that closes without authenticating against the laptop's
  // address (PerSourcePenalties), and a doctor run is often one of many attempts.
  const config::HostConfig& first = host->jump_chain.empty() ? *host : host->jump_chain.front();
  const std::string reach = "reach " + net::FormatHostPort(first.hostname, first.port);
  config::HostConfig strict = *host;
  strict.strict_host_key_checking = config::StrictHostKeyChecking::kYes;
  for (auto& hop : strict.jump_chain)
    hop.strict_host_key_checking = config::StrictHostKeyChecking::kYes;
  strict.batch_mode = true;
  ssh::NoPrompter nobody;
  ssh::ConnectOptions connect;
  connect.probe = false;
  if (strict.connect_timeout.count() == 0) strict.connect_timeout = std::chrono::seconds(15);
  auto t0 = Clock::now();
  auto session = ssh::Session::Connect(strict, nobody, connect);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  const bool unreached = !session.ok() &&
                         (session.error().code == ErrorCode::kResolve ||
                          session.error().code == ErrorCode::kConnect) &&
                         host->jump_chain.empty();
  if (unreached) {
    const Error& e = session.error();
    report.Add(reach, "fail", e.ToString(),
               e.hint.empty() ? "check the name, the network and any VPN" : e.hint);
  } else if (session.ok()) {
    report.Add(reach, "pass", "connected and logged in in " + std::to_string(ms) + " ms");
  } else if (host->jump_chain.empty()) {
    report.Add(reach, "pass", "TCP connected");
  }
  std::string agent_socket = !host->identity_agent.empty()  ? host->identity_agent
                             : std::getenv("SSH_AUTH_SOCK") ? std::getenv("SSH_AUTH_SOCK")
                                                            : "";
  if (unreached) {
    report.Add("host key", "skip", "no connection");
  } else if (!session.ok()) {
    const Error& e = session.error();
    if (e.code == ErrorCode::kHostKey) {
      report.Add("host key", "fail", e.message, e.hint);
    } else if (e.code == ErrorCode::kAuth) {
      report.Add("host key", "pass", "known and matching");
      report.Add("authentication", "fail", e.message, e.hint);
    } else if (e.code == ErrorCode::kNeedsLogin) {
      // Not a fault: the server wants a person (a second factor, a password, a key's
      // passphrase), which doctor does not ask for.
      report.Add("host key", "pass", "known and matching");
      report.Add("authentication", "warn", e.message,
                 "this host wants a password or a one-time code (a 2FA cluster): `tether up " +
                     host->alias +
                     "` asks for it at the terminal (or SSH_ASKPASS), once; a reconnect after "
                     "the link drops asks again: the daemon waits, listeners open, until "
                     "`tether login " +
                     host->alias + "`");
    } else {
      std::string through = host->jump_chain.empty() ? "" : " (through the jump hosts)";
      report.Add("ssh connection" + through, "fail", e.ToString(), e.hint);
    }
  } else {
    std::vector<std::string> files = host->user_known_hosts_files;
    files.insert(files.end(), host->global_known_hosts_files.begin(),
                 host->global_known_hosts_files.end());
    auto key = ssh::CheckHostKey((*session)->raw(), ssh::KnownHostsNameFor(*host), files);
    std::string where;
    if (key.ok()) {
      for (const auto& l : key->lines) {
        if (l.matches) where = l.file + ":" + std::to_string(l.line);
      }
    }
    report.Add("host key", "pass",
               (key.ok() ? key->server_key_type + " " + key->server_fingerprint : std::string("")) +
                   (where.empty() ? "" : ", known in " + where));
    report.Add("authentication", "pass",
               "logged in as " + host->user + " with " + (*session)->auth_method());
  }
  if (agent_socket.empty()) {
    report.Add("ssh-agent", "warn", "no agent (SSH_AUTH_SOCK is not set)",
               "a key with a passphrase needs the agent for reconnects without you: ssh-add");
  } else {
    auto agent = net::ConnectUnix(agent_socket);
    report.Add(
        "ssh-agent", agent.ok() ? "pass" : "warn",
        agent.ok() ? "answers at " + agent_socket : agent_socket + ": " + agent.error().message,
        agent.ok() ? "" : "start one (eval $(ssh-agent)) and ssh-add your key");
  }

  // 5. The daemon.
  auto state = daemon::StateDir::Open();
  json status;
  // Before CollectStatus, which removes what a dead daemon left (cli/doctor_crash.h).
  auto dead = state.ok() ? FindDeadDaemon(*state, alias) : std::nullopt;
  json dead_daemon;
  if (state.ok()) {
    json hosts = CollectStatus(*state, alias);
    if (!hosts.empty()) status = hosts[0];
  }
  if (status.is_null() && dead) {
    dead_daemon = ReportDeadDaemon(*dead, *host, toml.ok() ? toml->ProfileFor(alias) : nullptr,
                                   options.json, [&](auto... check) { report.Add(check...); });
  } else if (status.is_null()) {
    report.Add("daemon", "fail", alias + " is not up", "tether up " + alias);
  } else {
    std::string st = status.value("state", "");
    std::string evidence =
        "state " + st + ", pid " + std::to_string(status.value("pid", 0)) + ", up " +
        std::to_string(status.value("uptime_s", 0)) + " s, RTT " +
        (status["rtt_ms"].is_number() ? std::to_string(status["rtt_ms"].get<int>()) + " ms" : "-") +
        ", " + std::to_string(status.value("reconnects", 0)) + " reconnect(s)";
    std::string last = status.value("last_error", "");
    if (!last.empty()) evidence += "; last: " + last;
    report.Add("daemon", st == "up" ? "pass" : "fail", evidence,
               st == "needs-auth"    ? "run `tether up " + alias + "` to log in again"
               : st == "needs-login" ? "the server wants a password or a code again: run "
                                       "`tether login " +
                                           alias + "` (its forwards are kept)"
                                     : "");
  }

  // The user's own ControlPath: served, or why plain ssh there makes logins of its own.
  if (!status.is_null() && status.value("control_path", json()).is_object()) {
    const json& cp = status["control_path"];
    const std::string cp_state = cp.value("state", "");
    std::string fix;
    if (cp_state == "held")
      fix = "ssh -O exit " + alias + " ends that master; tether then takes the path";
    if (cp_state == "no directory") fix = "make the directory (mkdir -m 700 ...), as ssh needs too";
    report.Add("ControlPath " + cp.value("path", ""), cp_state == "serving" ? "pass" : "warn",
               ControlPathNote(status), fix);
  }

  // 6. Local forwards: listening, and by this daemon.
  int daemon_pid = status.is_null() ? 0 : status.value("pid", 0);
  json forwards = status.is_null() ? json::array() : status.value("forwards", json::array());
  bool refused_forward = false;
  for (const auto& f : forwards) {
    std::string kind = f.value("kind", "");
    std::string line = ForwardFlagLine(f);
    if (kind == "local" || kind == "dynamic") {
      uint16_t port = ListenPort(f.value("listen", ""));
      if (port == 0) {
        report.Add("forward " + line, "pass", "unix socket " + f.value("listen", ""));
        continue;
      }
      auto owners = FindPortOwners(port);
      std::string others;
      bool ours = false;
      for (const auto& o : owners) {
        if (o.pid == daemon_pid) {
          ours = true;
        } else {
          others += (others.empty() ? "" : "; ") +
                    (o.pid != 0 ? "pid " + std::to_string(o.pid) + " (" + o.command + ")"
                                : std::string("a process we cannot see"));
        }
      }
      if (!ours) {
        report.Add("forward " + line, "fail",
                   "the daemon does not listen on port " + std::to_string(port) +
                       (others.empty() ? "" : "; held by " + others),
                   "tether forward " + alias + " " + f.value("spec", ""));
      } else if (!others.empty()) {
        // Another program on the same port (another address or family): "localhost"
        // may reach it instead of the forward.
        report.Add("forward " + line, "fail",
                   "port " + std::to_string(port) + " is also held by " + others,
                   "stop that process, or forward another port");
      } else {
        report.Add("forward " + line, "pass",
                   "listening (pid " + std::to_string(daemon_pid) + "), " +
                       std::to_string(f.value("total", 0)) + " connection(s), " +
                       std::to_string(f.value("failed", 0)) + " failed");
      }
    }
  }

  // 7. Remote forwards and the proxy: bound on the server, and answering end to end.
  ssh::Session* connection = session.ok() ? session->get() : nullptr;
  std::vector<uint16_t> server_ports;
  if (connection != nullptr) server_ports = ServerListeningPorts(*connection);
  for (const auto& f : forwards) {
    std::string kind = f.value("kind", "");
    if (kind != "remote" && kind != "proxy") continue;
    std::string line = ForwardFlagLine(f);
    uint16_t port = ListenPort(f.value("listen", ""));
    if (f.value("state", "") != "listening") {
      refused_forward = true;
      report.Add("forward " + line, "fail", f.value("state", "") + ": " + f.value("error", ""),
                 "another process on the server holds the port (ss -ltnp there), or sshd "
                 "forbids it (see the sshd settings below)");
      continue;
    }
    if (connection == nullptr) {
      report.Add("forward " + line, "skip", "no connection to check it on the server");
      continue;
    }
    bool bound = std::find(server_ports.begin(), server_ports.end(), port) != server_ports.end();
    if (!bound) {
      report.Add(
          "forward " + line, "fail",
          "the daemon says listening, but the server lists nothing on port " + std::to_string(port),
          "tether forward " + alias + " --cancel -R " + std::to_string(port) + " and add it again");
      continue;
    }
    if (kind == "remote") {
      ProbeRemoteForward(*connection, *state, alias, f, port, report);
      continue;
    }
    // The proxy: from the server, a request through it to the probe URL.
    std::string url = options.probe.empty() ? kDefaultProbeUrl : options.probe;
    auto env =
        control::Request(state->SocketPath(alias), {{"cmd", "env"}}, std::chrono::seconds(5));
    std::string proxy_url = "http://127.0.0.1:" + std::to_string(port);
    if (env.ok() && env->contains("user")) {
      proxy_url = "http://" + env->value("user", "") + ":" + env->value("token", "") +
                  "@127.0.0.1:" + std::to_string(port);
    }
    // The proxy URL (with its token) travels on stdin, never in the command line.
    auto r = RunRemote(*connection,
                       "IFS= read -r p; curl -sS -o /dev/null -w '%{http_code}' --max-time 15 "
                       "--noproxy '' -x \"$p\" '" +
                           url + "'",
                       proxy_url + "\n");
    // 407 is the proxy refusing our credentials; 502 and 504 its word that the laptop
    // could not reach the site. Anything else came from the site itself.
    const std::string out = OutputOf(r);
    int code = std::atoi(out.c_str());
    bool answered = Succeeded(r) && code >= 100 && code != 407 && code != 502 && code != 504;
    report.Add("proxy end to end", answered ? "pass" : "fail",
               answered ? "from the server, " + url + " answered HTTP " + out + " through the proxy"
                        : "from the server, " + url + " through the proxy: " +
                              (r.ok() ? "curl exit " + std::to_string(r->exit_status) + " " + out
                                      : r.error().message),
               answered ? ""
                        : "is the laptop online? is --upstream (or the laptop's proxy) running? "
                          "`tether logs " +
                              alias + "` shows each refused request");
  }
  // Another account holding a forwarded port on the server.
  if (connection != nullptr) {
    for (auto& c : CheckServerPortHolders(OutputOn(*connection), forwards, alias)) {
      report.Add(c.name, c.status, c.evidence, c.fix);
    }
  }
  // The laptop-side upstream of the proxy, when one is set.
  for (const auto& f : forwards) {
    if (f.value("kind", "") != "proxy") continue;
    std::string target = f.value("target", "");
    size_t scheme = target.find("://");
    if (scheme == std::string::npos) continue;
    std::string hostport = target.substr(scheme + 3);
    size_t at = hostport.rfind('@');
    if (at != std::string::npos) hostport = hostport.substr(at + 1);
    size_t colon = hostport.rfind(':');
    std::string uh = hostport.substr(0, colon);
    if (!uh.empty() && uh.front() == '[') uh = uh.substr(1, uh.size() - 2);
    uint16_t up = static_cast<uint16_t>(std::atoi(hostport.c_str() + colon + 1));
    auto c = net::ConnectTcp(uh, up, std::chrono::seconds(3));
    report.Add("laptop's upstream proxy " + hostport, c.ok() ? "pass" : "fail",
               c.ok() ? "listening" : c.error().message,
               c.ok() ? "" : "start the laptop's proxy (e.g. the one on 7890), or drop --upstream");
  }

  // 8. Clocks.
  if (connection != nullptr) {
    timeval before{}, after{};
    ::gettimeofday(&before, nullptr);
    auto r = RunRemote(*connection, "date +%s.%N");
    ::gettimeofday(&after, nullptr);
    const double sent = before.tv_sec + before.tv_usec / 1e6;
    const double answered = after.tv_sec + after.tv_usec / 1e6;
    char* end = nullptr;
    const std::string out = OutputOf(r);
    double remote = std::strtod(out.c_str(), &end);
    if (!Succeeded(r) || end == out.c_str()) {
      report.Add("clock", "skip", "the server did not tell its time (date +%s.%N)");
    } else {
      ClockCheck clock = JudgeClock(remote, sent, answered);
      report.Add("clock", clock.status, clock.evidence,
                 clock.status == "pass" ? "" : "run NTP on both (timedatectl set-ntp true)");
    }
  }

  // 9. Why the server refused a forward.
  if (connection != nullptr && refused_forward) {
    const std::string out = OutputOf(RunRemote(
        *connection,
        "{ sshd -T 2>/dev/null || cat /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf "
        "2>/dev/null; } | grep -Ei '^[[:space:]]*(allowtcpforwarding|gatewayports|permitopen|"
        "permitlisten|maxsessions|disableforwarding)[[:space:]]'"));
    report.Add("sshd settings", out.empty() ? "skip" : "warn",
               out.empty() ? "could not read them (sshd -T needs root there)" : out,
               "AllowTcpForwarding must allow remote forwards; PermitListen must allow the port");
  }

  if (options.json) {
    json out = report.ToJson(alias);
    if (!dead_daemon.is_null()) out["dead_daemon"] = dead_daemon;
    std::printf("%s\n", out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  }
  return report.failed() ? 1 : 0;
}

}  // namespace tether::cli
