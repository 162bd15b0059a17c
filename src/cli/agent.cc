// tether agent install HOST [--dir DIR] [--port PORT] [--socket PATH]: copies the
// tether-agent built with this tether (a static binary: it needs nothing on the server) to
// the server over the daemon's connection, starts it (a systemd user unit where there is
// one, else in the background) on a unix socket in the account's runtime directory (or
// on 127.0.0.1:PORT with --port), and keeps its token and socket path on the laptop. Where
// the laptop's build cannot run on the server (another system or architecture), it says
// so and how to build the agent there. Also the laptop side of `tether status --remote`.
#include "cli/agent.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/remote_command.h"
#include "common/fs.h"
#include "common/process.h"
#include "config/tether_config.h"
#include "control/control_client.h"
#include "net/socket.h"

namespace tether::cli {
namespace {

constexpr auto kRemoteTimeout = std::chrono::seconds(60);
// The agent's /status is a few KiB; more is not an agent.
constexpr size_t kMaxAgentReply = 4u << 20;
constexpr auto kControlTimeout = std::chrono::seconds(5);

std::string Quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string AgentsDir() {
  std::string config = config::TetherConfig::DefaultPath();
  return config.substr(0, config.rfind('/')) + "/agents";
}

Result<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError("agent", "cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string BuildHint() {
  return "the agent is one static binary for the machine it was built on: build it for the "
         "server's (scripts/build.sh on a machine of that kind) and point TETHER_AGENT_BIN at "
         "its build/src/tether-agent";
}

}  // namespace

std::string AgentRecordPath(const std::string& host) {
  return AgentsDir() + "/" + daemon::FileNameFor(host) + ".json";
}

Result<AgentRecord> LoadAgentRecord(const std::string& host) {
  auto text = ReadAll(AgentRecordPath(host));
  if (!text.ok()) {
    return MakeError("agent", "no agent installed on " + host + " from this laptop",
                     "tether agent install " + host + ", then tether up " + host + " --agent");
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("token")) {
    return MakeError("agent", AgentRecordPath(host) + " is damaged",
                     "tether agent install " + host);
  }
  AgentRecord r;
  r.token = j.value("token", "");
  r.socket = j.value("socket", "");
  r.port = j.value("port", 8080);
  return r;
}

config::ForwardSpec AgentForwardSpec(const daemon::StateDir& state, const std::string& alias,
                                     const AgentRecord& record) {
  config::ForwardSpec spec;
  spec.kind = config::ForwardKind::kLocal;
  spec.listen.path = state.AgentSocketPath(alias);
  if (!record.socket.empty()) {
    spec.target.path = record.socket;  // a direct-streamlocal channel on the server
  } else {
    spec.target.host = "127.0.0.1";
    spec.target.port = static_cast<uint16_t>(record.port);
  }
  return spec;
}

Result<nlohmann::json> FetchAgentStatus(const daemon::StateDir& state, const std::string& host,
                                        std::chrono::milliseconds timeout) {
  auto record = LoadAgentRecord(host);
  if (!record.ok()) return record.take_error();
  return FetchAgentStatus(state, host, *record, timeout);
}

Result<nlohmann::json> FetchAgentStatus(const daemon::StateDir& state, const std::string& host,
                                        const AgentRecord& record,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Not blocking in connect: a daemon that stopped accepting has a full backlog.
  auto fd = net::ConnectUnixNow(state.AgentSocketPath(host));
  if (!fd.ok()) {
    return MakeError("agent", "the agent of " + host + " is not forwarded",
                     "tether up " + host + " --agent");
  }
  (void)net::SetNonBlocking(fd->get(), false);
  // Each send and recv waits at most what is left of `timeout`.
  auto wait_at_most = [&](int option) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    timeval tv{static_cast<time_t>(left.count() / 1000000),
               static_cast<suseconds_t>(left.count() % 1000000)};
    return ::setsockopt(fd->get(), SOL_SOCKET, option, &tv, sizeof tv) == 0;
  };
  const auto seconds =
      std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
  auto too_slow = [&] {
    return MakeError(
        "agent", "the agent of " + host + " did not answer within " + seconds + " s",
        "`tether status " + host + "` shows the link; `tether logs " + host + "` the daemon's log");
  };
  std::string request = "GET /status HTTP/1.1\r\nHost: tether-agent\r\nAuthorization: Bearer " +
                        record.token + "\r\nConnection: close\r\n\r\n";
  if (!wait_at_most(SO_SNDTIMEO)) return too_slow();
  if (::send(fd->get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return MakeError("agent", "cannot talk to the agent of " + host);
  }
  std::string reply;
  char buf[16384];
  while (reply.size() < kMaxAgentReply) {
    if (!wait_at_most(SO_RCVTIMEO)) return too_slow();
    ssize_t n = ::recv(fd->get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return too_slow();
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  size_t head_end = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) {
    return MakeError("agent", "the agent of " + host + " did not answer (is it running there?)",
                     "tether agent install " + host + " starts it again");
  }
  int code = std::atoi(reply.c_str() + 9);
  std::string body = reply.substr(head_end + 4);
  if (code == 401) {
    return MakeError("agent", "the agent of " + host + " refused our token",
                     "tether agent install " + host + " fetches the current one");
  }
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (code != 200 || !j.is_object()) {
    return MakeError("agent", "the agent of " + host + " answered HTTP " + std::to_string(code));
  }
  return j;
}

namespace {

// A daemon already forwarding the agent (`up --agent`) to where an earlier install put it
// (another socket, or a port) is pointed at where this one listens: cancelled, then added.
// Best effort: without a daemon or such a forward there is nothing to do.
void RepointAgentForward(const daemon::StateDir& state, const std::string& host,
                         const AgentRecord& record) {
  const config::ForwardSpec spec = AgentForwardSpec(state, host, record);
  const std::string control = state.SocketPath(host);
  auto status = control::Request(control, {{"cmd", "status"}}, kControlTimeout);
  if (!status.ok() || !status->contains("forwards")) return;
  for (const auto& f : (*status)["forwards"]) {
    const std::string current = f.value("spec", "");
    if (f.value("kind", "") != "local" || current.rfind(spec.listen.path + ":", 0) != 0) continue;
    if (current == spec.ToString()) return;
    auto cancelled = control::Request(
        control, {{"cmd", "cancel"}, {"kind", "local"}, {"spec", current}}, kControlTimeout);
    if (!cancelled.ok() || !cancelled->value("ok", false)) return;
    auto added = control::Request(
        control, {{"cmd", "forward"}, {"kind", "local"}, {"spec", spec.ToString()}},
        kControlTimeout);
    if (added.ok() && added->value("ok", false)) {
      std::printf("  the running `up --agent` forward now goes to %s\n",
                  spec.target.ToString().c_str());
    }
    return;
  }
}

}  // namespace

int RunAgentInstall(const GlobalOptions& global, const AgentInstallOptions& options) {
  const std::string& host = options.host;
  Status up = EnsureUp(global, host, {});
  if (!up.ok()) {
    PrintError(up.error());
    return 1;
  }
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  auto remote = [&](const std::string& cmd, const std::string& input = "") {
    return RunRemoteCommand(*state, host, cmd, input, kRemoteTimeout);
  };

  // Can our build run there at all?
  utsname me{};
  ::uname(&me);
  std::string local_system = std::string(me.sysname) + " " + me.machine;
  auto uname = remote("uname -sm");
  if (!uname.ok()) {
    PrintError(uname.error());
    return 1;
  }
  std::string server_system = uname->out.substr(0, uname->out.find('\n'));
  if (server_system != local_system) {
    PrintError(MakeError(
        "agent", host + " runs " + server_system + "; the agent built here is for " + local_system,
        BuildHint()));
    return 1;
  }

  std::string agent_path = AgentBinaryPath();
  auto binary = ReadAll(agent_path);
  if (!binary.ok()) {
    PrintError(MakeError("agent", "no tether-agent at " + agent_path,
                         "build it (scripts/build.sh) or set TETHER_AGENT_BIN"));
    return 1;
  }
  // Debug information makes up most of the file: leave it behind when strip is there. The
  // copy goes in a fresh private directory (mkdtemp, 0700), never at a name another
  // account could guess and plant first.
  const char* tmp = std::getenv("TMPDIR");
  std::string dir_template =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/tether-agent-XXXXXX";
  if (::mkdtemp(dir_template.data()) != nullptr) {
    std::string stripped = dir_template + "/tether-agent";
    ProcessOptions quiet;
    quiet.timeout = std::chrono::seconds(30);
    quiet.stderr_with_stdout = true;  // a strip that fails says why here: the copy is whole
    if (RunProcess({"strip", "-o", stripped, agent_path}, quiet).ok()) {
      auto small = ReadAll(stripped);
      if (small.ok()) binary = std::move(small);
    }
    ::unlink(stripped.c_str());
    ::rmdir(dir_template.c_str());
  }

  std::string dir = options.dir.empty() ? "\"$HOME/.local\"" : Quote(options.dir);
  std::string token_flag = options.dir.empty() ? "" : " --token-file \"$D/agent-token\"";
  std::string prelude = "D=" + dir + "; A=\"$D/bin/tether-agent\"; ";
  std::fprintf(stderr, "tether: copying tether-agent (%zu KiB) to %s...\n", binary->size() >> 10,
               host.c_str());
  auto copied = remote(prelude +
                           "umask 077; mkdir -p \"$D/bin\" && cat > \"$A.new\" && "
                           "chmod 700 \"$A.new\" && mv -f \"$A.new\" \"$A\"",
                       *binary);
  if (!copied.ok() || copied->exit != 0) {
    PrintError(MakeError("agent", "copying to " + host + " failed: " +
                                      (copied.ok() ? copied->err : copied.error().message)));
    return 1;
  }
  auto version = remote(prelude + "\"$A\" --version");
  if (!version.ok() || version->exit != 0) {
    PrintError(MakeError("agent",
                         "the agent built here does not run on " + host + ": " +
                             (version.ok() ? version->err : version.error().message),
                         BuildHint()));
    return 1;
  }
  auto token = remote(prelude + "\"$A\" --print-token" + token_flag);
  std::string token_text = token.ok() ? token->out.substr(0, token->out.find('\n')) : "";
  if (!token.ok() || token->exit != 0 || token_text.size() != 64) {
    PrintError(MakeError("agent", "the agent on " + host + " has no usable token: " +
                                      (token.ok() ? token->err : token.error().message)));
    return 1;
  }

  // Where it listens: a TCP port when asked, else a unix socket whose path the agent
  // itself picks (and whose directory it checks) on the server, given to it explicitly from
  // then on so the unit, the background start and the record agree.
  std::string listen_flag;
  std::string where;
  std::string socket_path;
  if (options.port != 0) {
    where = "127.0.0.1:" + std::to_string(options.port);
    listen_flag = " --listen " + where;
  } else {
    std::string socket_flag = !options.socket.empty() ? " --socket " + Quote(options.socket)
                              : !options.dir.empty()  ? " --socket \"$D/agent.sock\""
                                                      : "";
    auto printed = remote(prelude + "\"$A\" --print-socket" + socket_flag);
    socket_path = printed.ok() ? printed->out.substr(0, printed->out.find('\n')) : "";
    if (!printed.ok() || printed->exit != 0 || socket_path.empty() || socket_path[0] != '/') {
      PrintError(MakeError("agent",
                           "the agent on " + host + " has no place for its socket: " +
                               (printed.ok() ? printed->err : printed.error().message),
                           "choose one with --socket PATH, or use --port PORT"));
      return 1;
    }
    where = "unix:" + socket_path;
    listen_flag = " --socket " + Quote(socket_path);
  }

  // Stop an agent we started before, then start this one.
  std::string start =
      prelude +
      "if [ -f \"$D/agent.pid\" ]; then kill \"$(cat \"$D/agent.pid\")\" 2>/dev/null; "
      "i=0; while [ $i -lt 50 ] && kill -0 \"$(cat \"$D/agent.pid\" 2>/dev/null)\" 2>/dev/null; "
      "do sleep 0.1; i=$((i+1)); done; fi; ";
  auto has_systemd = remote("systemctl --user show-environment >/dev/null 2>&1");
  bool systemd = options.dir.empty() && has_systemd.ok() && has_systemd->exit == 0;
  std::string how;
  if (systemd) {
    // systemd's own quoting: the path in double quotes, with % doubled (a specifier).
    std::string unit_arg;
    if (options.port != 0) {
      unit_arg = "--listen " + where;
    } else {
      unit_arg = "--socket \"";
      for (char c : socket_path) {
        if (c == '"' || c == '\\') unit_arg += '\\';
        unit_arg += c == '%' ? std::string("%%") : std::string(1, c);
      }
      unit_arg += "\"";
    }
    std::string unit =
        "[Unit]\nDescription=tether-agent: GPU status for tether\n\n[Service]\n"
        "ExecStart=%h/.local/bin/tether-agent " +
        unit_arg + "\nRestart=on-failure\n\n[Install]\nWantedBy=default.target\n";
    auto started = remote(start +
                              "mkdir -p \"$HOME/.config/systemd/user\" && cat > "
                              "\"$HOME/.config/systemd/user/tether-agent.service\" && "
                              "systemctl --user daemon-reload && "
                              "systemctl --user enable tether-agent >/dev/null 2>&1; "
                              "systemctl --user restart tether-agent",
                          unit);
    systemd = started.ok() && started->exit == 0;
    how = "a systemd user unit (tether-agent.service)";
  }
  if (!systemd) {
    auto started = remote(start + "\"$A\" --daemon" + listen_flag + " --pid-file \"$D/agent.pid\"" +
                          " --log-file \"$D/agent.log\"" + token_flag);
    if (!started.ok() || started->exit != 0) {
      PrintError(MakeError(
          "agent", "the agent did not start on " + host + ": " +
                       (started.ok() ? started->err + started->out : started.error().message)));
      return 1;
    }
    how = "the background (" + started->out.substr(0, started->out.find('\n')) + ")";
  }

  // The token stays on the laptop, 0600 in a 0700 directory.
  const std::string record = AgentRecordPath(host);
  nlohmann::json record_json = {{"token", token_text}};
  if (options.port != 0) {
    record_json["port"] = options.port;
  } else {
    record_json["socket"] = socket_path;
  }
  const std::string text = record_json.dump() + "\n";
  std::string failed;
  if (int err = WriteFileAtomically(record, text, 0600, &failed)) {
    PrintError(MakeError("agent",
                         "the agent runs on " + host + ", but its token could not be kept: " +
                             failed + ": " + std::strerror(err),
                         "fix that, then run `tether agent install " + host + "` again"));
    return 1;
  }
  std::printf("%s: %s installed, running in %s, on the server's %s\n", host.c_str(),
              version->out.substr(0, version->out.find('\n')).c_str(), how.c_str(), where.c_str());
  std::printf("  token kept in %s\n", record.c_str());
  AgentRecord installed;
  installed.socket = socket_path;
  if (options.port != 0) installed.port = options.port;
  RepointAgentForward(*state, host, installed);
  std::printf("  `tether up %s --agent` forwards it; `tether status %s --remote` shows its GPUs\n",
              host.c_str(), host.c_str());
  return 0;
}

}  // namespace tether::cli
