// tether exec HOST [-t] [--session] [--] CMD...   a command over the daemon's connection
// tether ssh [ssh options] HOST [CMD...] the same with ssh's argument grammar, for
//                                        `rsync -e 'tether ssh'` and GIT_SSH_COMMAND; a
//                                        shell with a pty when there is no command
// tether run HOST [--] CMD...          a command with the server proxy's variables set
// tether ssh-config HOST               a Host block for stock ssh's ControlPath
// tether ssh-config --install          an Include of those blocks atop ~/.ssh/config
//
// All of them are clients of the daemon's HOST.mux (OpenSSH's mux protocol, as `ssh -S`),
// and start the daemon first when none runs. The remote command line is the arguments
// joined by spaces, run by the remote user's shell, as ssh forms it.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/hosts.h"
#include "cli/mux_client.h"
#include "cli/proxy_env.h"
#include "cli/ssh_args.h"
#include "cli/ssh_include.h"
#include "common/fs.h"
#include "control/mux_wire.h"
#include "daemon/state_dir.h"

namespace tether::cli {
namespace {

namespace mux = control::mux;

// The terminal's settings before raw mode, restored on every way out.
termios g_saved_tty;
bool g_raw = false;
volatile pid_t g_daemon_pid = 0;

void RestoreTerminal() {
  if (g_raw) {
    ::tcsetattr(STDIN_FILENO, TCSADRAIN, &g_saved_tty);
    g_raw = false;
  }
}

void RelayWinch(int) {
  // As ssh's mux client: the daemon reads the new size from the terminal we passed.
  if (g_daemon_pid > 1) ::kill(g_daemon_pid, SIGWINCH);
}

void OnFatalSignal(int signo) {
  RestoreTerminal();
  ::signal(signo, SIG_DFL);
  ::raise(signo);
}

void EnterRawMode() {
  if (::tcgetattr(STDIN_FILENO, &g_saved_tty) != 0) return;
  termios raw = g_saved_tty;
  ::cfmakeraw(&raw);
  if (::tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0) {
    g_raw = true;
    std::atexit(RestoreTerminal);
    for (int s : {SIGTERM, SIGHUP, SIGQUIT}) ::signal(s, OnFatalSignal);
  }
}

}  // namespace

Status EnsureUp(const GlobalOptions& global, const std::string& host,
                const std::vector<std::string>& up_args) {
  auto state = daemon::StateDir::Open();
  if (!state.ok()) return state.take_error();
  if (ProbeHost(*state, daemon::FileNameFor(host)).running) return Status::Ok();
  std::vector<std::string> args = {"tether"};
  if (!global.config_file.empty()) args.insert(args.end(), {"-F", global.config_file});
  args.push_back("up");
  args.insert(args.end(), up_args.begin(), up_args.end());
  args.push_back(host);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("exec", "fork", errno);
  if (pid == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return MakeError("exec", "could not bring " + host + " up (see above)");
  }
  return Status::Ok();
}

namespace {

std::string JoinCommand(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

struct SessionPlan {
  std::string host;
  std::vector<std::string> command;
  bool force_tty = false;            // -t
  bool no_tty = false;               // -T
  bool force_session = false;        // --session: never by the resident runner
  bool shell_gets_tty = false;       // a shell (no command) gets one when stdin is a terminal
  std::vector<std::string> up_args;  // for starting the daemon (-l, -p)
  std::string stdin_prefix;          // tether run: a line the command's shell reads first
  bool stdin_null = false;           // tether ssh -n: stdin from /dev/null
  bool subsystem = false;            // tether ssh -s: the command is a subsystem's name
  std::vector<std::string> env;      // NAME=value for the session (SendEnv, SetEnv)
};

int RunSession(const GlobalOptions& global, const SessionPlan& plan) {
  Status up = EnsureUp(global, plan.host, plan.up_args);
  if (!up.ok()) {
    PrintError(up.error());
    return 255;
  }
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 255;
  }
  auto client = MuxClient::Connect(state->MuxPath(plan.host));
  if (!client.ok()) {
    PrintError(MakeError("exec", plan.host + ": " + client.error().message,
                         "is the daemon running? `tether status " + plan.host + "`"));
    return 255;
  }
  g_daemon_pid = client->daemon_pid();

  mux::NewSession request;
  request.request_id = 2;
  request.command = JoinCommand(plan.command);
  bool tty = plan.force_tty || (plan.command.empty() && plan.shell_gets_tty);
  if (plan.no_tty) tty = false;
  tty = tty && ::isatty(STDIN_FILENO);
  request.want_tty = tty;
  request.escape_char = mux::kNoEscapeChar;
  if (const char* term = std::getenv("TERM")) request.term = term;
  if (const char* lang = std::getenv("LANG")) request.env.push_back(std::string("LANG=") + lang);
  request.env.insert(request.env.end(), plan.env.begin(), plan.env.end());
  request.subsystem = plan.subsystem;
  request.force_session = plan.force_session;

  int in = STDIN_FILENO;
  UniqueFd pipe_read;
  UniqueFd dev_null;
  if (plan.stdin_null) {
    dev_null.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (dev_null.valid()) in = dev_null.get();
  }
  if (!plan.stdin_prefix.empty()) {
    // The first line goes to the command's shell, then our stdin follows it.
    int p[2];
    if (::pipe(p) != 0) {
      PrintError(ErrnoError("exec", "pipe", errno));
      return 255;
    }
    pipe_read.Reset(p[0]);
    in = p[0];
    int writer = p[1];
    std::string prefix = plan.stdin_prefix;
    std::thread([writer, prefix] {
      ::signal(SIGPIPE, SIG_IGN);
      bool ok =
          ::write(writer, prefix.data(), prefix.size()) == static_cast<ssize_t>(prefix.size());
      char buf[65536];
      while (ok) {
        ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0) break;
        ok = ::write(writer, buf, static_cast<size_t>(n)) == n;
      }
      ::close(writer);
    }).detach();
  }

  ::signal(SIGWINCH, RelayWinch);
  Status opened = client->OpenSession(request, in, STDOUT_FILENO, STDERR_FILENO);
  pipe_read.Reset();  // the daemon holds its own copy now
  if (!opened.ok()) {
    PrintError(MakeError("exec", plan.host + ": " + opened.error().message));
    return 255;
  }
  if (tty) EnterRawMode();
  bool tty_failed = false;
  uint32_t value = client->WaitForExit(&tty_failed);
  RestoreTerminal();
  return static_cast<int>(value & 0xff);
}

int Usage(const char* text) {
  std::fprintf(stderr, "usage: %s\n", text);
  return 2;
}

}  // namespace

int RunExecArgs(const GlobalOptions& global, const std::vector<std::string>& args) {
  SessionPlan plan;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-t") {
      plan.force_tty = true;
    } else if (a == "-T") {
      plan.no_tty = true;
    } else if (a == "--session") {
      plan.force_session = true;
    } else if (a == "-h" || a == "--help") {
      return Usage("tether exec HOST [-t] [--session] [--] CMD...");
    } else if (a == "--") {
      ++i;
      break;
    } else if (plan.host.empty() && a[0] != '-') {
      plan.host = a;
    } else if (!plan.host.empty()) {
      break;
    } else {
      return Usage("tether exec HOST [-t] [--session] [--] CMD...");
    }
  }
  plan.command.assign(args.begin() + static_cast<long>(i), args.end());
  if (plan.host.empty() || plan.command.empty())
    return Usage("tether exec HOST [-t] [--session] [--] CMD...");
  return RunSession(global, plan);
}

int RunSshArgs(const GlobalOptions& global, const std::vector<std::string>& args) {
  auto parsed = ParseSshArgs(args);
  if (!parsed.ok()) {
    // As ssh for a bad option: the reason on stderr, exit 255 (what rsync and git report).
    std::fprintf(stderr, "tether ssh: %s\n", parsed.error().message.c_str());
    if (!parsed.error().hint.empty()) std::fprintf(stderr, "  %s\n", parsed.error().hint.c_str());
    return 255;
  }
  const SshArgs& ssh = *parsed;
  if (ssh.verbose > 0) {
    for (const auto& note : ssh.notes) std::fprintf(stderr, "tether ssh: %s\n", note.c_str());
  }
  if (ssh.print_version) {
    std::fprintf(stderr, "tether ssh (tether %s)\n", TETHER_VERSION);
    return 0;
  }
  if (ssh.print_config) {
    // What ssh -G would say, as far as tether ssh decides it (git runs `-G` to learn
    // whether this is an OpenSSH-like client that takes -p and -o SendEnv).
    std::printf("host %s\n", ssh.host.c_str());
    if (!ssh.user.empty()) std::printf("user %s\n", ssh.user.c_str());
    if (!ssh.port.empty()) std::printf("port %s\n", ssh.port.c_str());
    return 0;
  }
  SessionPlan plan;
  plan.shell_gets_tty = true;
  plan.host = ssh.host;
  plan.command = ssh.command;
  plan.force_tty = ssh.force_tty;
  plan.no_tty = ssh.no_tty;
  plan.stdin_null = ssh.stdin_null;
  plan.subsystem = ssh.subsystem;
  plan.env = SelectSendEnv(ssh.send_env, environ);
  plan.env.insert(plan.env.end(), ssh.set_env.begin(), ssh.set_env.end());
  if (!ssh.user.empty()) plan.up_args.insert(plan.up_args.end(), {"-l", ssh.user});
  if (!ssh.port.empty()) plan.up_args.insert(plan.up_args.end(), {"-p", ssh.port});
  return RunSession(global, plan);
}

// tether run --local HOST -- CMD: CMD runs here, with the variables of `env --local`.
int RunLocal(const std::string& host, const std::vector<std::string>& command) {
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 255;
  }
  auto vars = FetchLocalProxyVariables(*state, host);
  if (!vars.ok()) {
    PrintError(vars.error());
    return 255;
  }
  for (const auto& [name, value] : *vars) ::setenv(name.c_str(), value.c_str(), 1);
  std::vector<std::string> words = command;
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  PrintError(ErrnoError("run", command[0], errno));
  return 127;
}

int RunRunArgs(const GlobalOptions& global, const std::vector<std::string>& args) {
  SessionPlan plan;
  size_t i = 0;
  bool local = false;
  if (i < args.size() && args[i] == "--local") {
    local = true;
    ++i;
  }
  if (i < args.size() && args[i][0] != '-') plan.host = args[i++];
  if (i < args.size() && args[i] == "--") ++i;
  plan.command.assign(args.begin() + static_cast<long>(i), args.end());
  if (plan.host.empty() || plan.command.empty()) {
    return Usage("tether run [--local] HOST [--] CMD...");
  }
  if (local) return RunLocal(plan.host, plan.command);
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 255;
  }
  if (!ProbeHost(*state, daemon::FileNameFor(plan.host)).running) {
    PrintError(MakeError("run", plan.host + " is not up",
                         "start it with `tether up " + plan.host + " --proxy`"));
    return 255;
  }
  auto vars = FetchProxyVariables(*state, plan.host);
  if (!vars.ok()) {
    PrintError(vars.error());
    return 255;
  }
  // The variables carry the proxy's token: they travel on the command's stdin, read by
  // its shell before anything else, never in the command line (which `ps` shows to
  // everyone on the server) and never in a file there.
  plan.stdin_prefix = ShellPrefix(*vars) + "\n";
  std::vector<std::string> command = {"IFS= read -r __tether_proxy_env;",
                                      "eval \"$__tether_proxy_env\";", "unset __tether_proxy_env;"};
  command.insert(command.end(), plan.command.begin(), plan.command.end());
  plan.command = std::move(command);
  return RunSession(global, plan);
}

int RunSshConfigArgs(const GlobalOptions& global, const std::vector<std::string>& args) {
  const char* usage = "tether ssh-config HOST | --install | --uninstall";
  if (args.size() != 1) return Usage(usage);
  const bool install = args[0] == "--install";
  const bool uninstall = args[0] == "--uninstall";
  if (!install && !uninstall && args[0][0] == '-') return Usage(usage);
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  if (install || uninstall) {
    // The file tether itself reads: -F FILE, else ~/.ssh/config.
    std::string config = global.config_file;
    if (config.empty()) config = HomeDir() + "/.ssh/config";
    auto change = install ? InstallInclude(*state, config) : UninstallInclude(*state, config);
    if (!change.ok()) {
      PrintError(change.error());
      return 1;
    }
    if (install && !change->changed) {
      std::printf("tether: %s already includes %s: nothing to do\n", change->config_path.c_str(),
                  HostBlocksPath(*state).c_str());
    } else if (install) {
      std::printf(
          "tether: put 2 lines at the top of %s%s%s.\n"
          "Plain ssh, scp, rsync and git to a host tether runs now ride its connection; they\n"
          "connect directly when it is not up. `tether ssh-config --uninstall` takes them out.\n",
          change->config_path.c_str(), change->backup_path.empty() ? "" : " (a copy is in ",
          change->backup_path.empty() ? "" : (change->backup_path + ")").c_str());
    } else if (change->changed) {
      std::printf("tether: took tether's lines out of %s\n", change->config_path.c_str());
    } else {
      std::printf("tether: %s has no tether lines: nothing to do\n", change->config_path.c_str());
    }
    return 0;
  }
  const std::string& host = args[0];
  std::printf(
      "# Stock ssh, scp, rsync and git ride tether's connection to %s while it is up, and\n"
      "# connect directly when it is not. Add to ~/.ssh/config (before other Host %s lines),\n"
      "# or let `tether ssh-config --install` do it for every host tether runs.\n"
      "Host %s\n"
      "  ControlMaster no\n"
      "  ControlPath %s\n",
      host.c_str(), host.c_str(), host.c_str(), state->MuxPath(host).c_str());
  return 0;
}

}  // namespace tether::cli
