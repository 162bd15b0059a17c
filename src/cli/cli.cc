#include "cli/cli.h"

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cli/complete.h"

namespace tether::cli {

namespace {

// Started with stdin, stdout or stderr closed (`cmd <&-`, as agents and daemons do), the
// first socket we open would become descriptor 0, 1 or 2: exec would pass its own mux
// socket to the daemon as the command's stdin, and a log line would land in a socket.
// /dev/null takes the free slots first, as OpenSSH's sanitise_stdfd() does.
void OpenMissingStdio() {
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int null = ::open("/dev/null", O_RDWR);   // the lowest free descriptor: this one
    if (null > STDERR_FILENO) ::close(null);  // cannot happen; never leak it
  }
}

// Global options (-F FILE, -v) before the verb; returns the index of the verb.
int ParseLeadingGlobals(int argc, char** argv, GlobalOptions& global) {
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-F" && i + 1 < argc) {
      global.config_file = argv[++i];
    } else if (a.size() >= 2 && a[0] == '-' && a.find_first_not_of('v', 1) == std::string::npos) {
      global.verbosity += static_cast<int>(a.size()) - 1;
    } else {
      break;
    }
  }
  return i;
}

// exec, ssh and run take everything after HOST as the remote command, options included:
// they are parsed before CLI11 sees them. Global options (-F FILE, -v) may come first.
std::optional<int> RunPassThroughVerb(int argc, char** argv) {
  GlobalOptions global;
  int i = ParseLeadingGlobals(argc, argv, global);
  if (i >= argc) return std::nullopt;
  const std::pair<const char*, int (*)(const GlobalOptions&, const std::vector<std::string>&)>
      verbs[] = {{"exec", RunExecArgs},
                 {"ssh", RunSshArgs},
                 {"run", RunRunArgs},
                 {"ssh-config", RunSshConfigArgs}};
  for (const auto& [name, run] : verbs) {
    if (std::string(argv[i]) == name) {
      return run(global, std::vector<std::string>(argv + i + 1, argv + argc));
    }
  }
  return std::nullopt;
}

}  // namespace

int Main(int argc, char** argv) {
  OpenMissingStdio();
  if (auto code = RunPassThroughVerb(argc, argv)) return *code;
  CLI::App app{"tether: keep your laptop tethered to remote servers over SSH", "tether"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tether ") + TETHER_VERSION);
  GlobalOptions global;
  app.add_option("-F", global.config_file, "ssh_config file to read instead of ~/.ssh/config");
  app.add_flag("-v", global.verbosity, "more logging (repeat for more)");

  UpOptions up;
  CLI::App* up_cmd =
      app.add_subcommand("up", "connect to HOST in the background and open its forwards");
  up_cmd->add_option("host", up.destination, "a Host of ssh_config, or [user@]host[:port]")
      ->required();
  up_cmd
      ->add_option("-L", up.local_forwards,
                   "local forward: [bind:]port:host:hostport, [bind:]port:/remote/socket, "
                   "/local/socket:host:hostport")
      ->allow_extra_args(false);
  up_cmd
      ->add_option("-R", up.remote_forwards,
                   "remote forward: [bind:]port:host:hostport, [bind:]port:/local/socket, "
                   "[bind:]port (SOCKS on the server)")
      ->allow_extra_args(false);
  up_cmd->add_option("-D", up.dynamic_forwards, "dynamic forward (SOCKS/HTTP proxy): [bind:]port")
      ->allow_extra_args(false);
  up_cmd->add_option("-o", up.options, "ssh_config option, as Keyword=value")
      ->allow_extra_args(false);
  up_cmd->add_flag("--proxy{10808}", up.proxy_port,
                   "give the server internet through the laptop: HTTP and SOCKS on its "
                   "127.0.0.1:PORT (default 10808; --proxy=PORT)");
  up_cmd->add_flag("--agent{-1}", up.agent_port,
                   "forward the server's tether-agent for `tether status --remote`: its unix "
                   "socket, as `tether agent install` recorded it (--agent=PORT: its "
                   "127.0.0.1:PORT)");
  up_cmd->add_option("--upstream", up.upstream,
                     "the laptop-side proxy the server's traffic goes through "
                     "(http://host:port or socks5://host:port)");
  up_cmd->add_flag("--proxy-open", up.proxy_open,
                   "let any account on the server use the proxy (no user and token)");
  up_cmd
      ->add_option("--laptop-network", up.laptop_network,
                   "what of the laptop's network the server proxy and reverse SOCKS reach: "
                   "public (the default), private (also private networks), all (also its "
                   "loopback and link-local addresses)")
      ->check(CLI::IsMember({"public", "private", "all"}));
  up_cmd
      ->add_option("--lanes", up.lanes,
                   "further connections that carry -L/-D streams, each on its own core "
                   "(0: all on one connection; default: 0 below 4 cores, else (cores - 2) / 2, "
                   "at most 3)")
      ->check(CLI::Range(0, 8));
  up_cmd->add_flag("--auto-forward", up.auto_forward,
                   "forward by themselves the ports your processes on the server listen on");
  up_cmd->add_flag("--fast-exec", up.fast_exec,
                   "run commands without a pty through a resident runner on the server: "
                   "milliseconds instead of a session's start (sshd, PAM, rc files) each");
  up_cmd->add_option("--auto-forward-allow", up.auto_forward_allow,
                     "only these server ports forward themselves: ports and ranges, as "
                     "8000-8999,6006 (implies --auto-forward; default: auto_forward_allow)");
  up_cmd->add_option("--auto-forward-deny", up.auto_forward_deny,
                     "server ports that never forward themselves, as 5432,9000-9100 (implies "
                     "--auto-forward; default: auto_forward_deny)");
  up_cmd->add_option("--auto-forward-max", up.auto_forward_max,
                     "auto forwards at most, 0 to 1000 (implies --auto-forward; default: "
                     "auto_forward_max, else 20)");
  up_cmd->add_option("-J", up.jump, "jump hosts, as ssh -J: [user@]host[:port][,...]");
  up_cmd->add_option("-l", up.user, "remote user");
  up_cmd->add_option("-p", up.port, "remote port")->check(CLI::Range(1, 65535));
  up_cmd->add_option("-i", up.identity_files, "identity (private key) file")
      ->allow_extra_args(false);
  up_cmd->add_flag("--foreground", up.foreground, "stay attached and log to stderr");

  ForwardOptions forward;
  CLI::App* forward_cmd =
      app.add_subcommand("forward", "add forwards to a running HOST, or --cancel one");
  forward_cmd->add_option("host", forward.host, "the host")->required();
  forward_cmd->add_option("-L", forward.local_forwards, "add a local forward")
      ->allow_extra_args(false);
  forward_cmd->add_option("-R", forward.remote_forwards, "add a remote forward")
      ->allow_extra_args(false);
  forward_cmd->add_option("-D", forward.dynamic_forwards, "add a dynamic (SOCKS) forward")
      ->allow_extra_args(false);
  forward_cmd
      ->add_option("--cancel", forward.cancels,
                   "remove the forward listening at SPEC (\"8000\", \"-R 9000\", a full spec)")
      ->allow_extra_args(false);

  EnvOptions env;
  CLI::App* env_cmd =
      app.add_subcommand("env", "print the proxy variables for the server (after up --proxy)");
  env_cmd->add_option("host", env.host, "the host")->required();
  env_cmd->add_option("--shell", env.shell, "sh (also bash, zsh) or fish")
      ->check(CLI::IsMember({"sh", "bash", "zsh", "fish"}));
  env_cmd->add_flag("--local", env.local,
                    "for programs on this machine, through the host's -D port");

  // Parsed by RunPassThroughVerb; listed here for --help, the completions and the man
  // page's test (tests/install/): the options each parser takes, ssh's the common ones.
  CLI::App* exec_cmd =
      app.add_subcommand("exec", "run CMD on HOST over its connection: exec HOST [-t] [--] CMD...");
  exec_cmd->add_flag("-t")->description("give the command a pty");
  exec_cmd->add_flag("-T")->description("no pty, even for a shell");
  exec_cmd->add_flag("--session")
      ->description("a session of its own even when --fast-exec's runner could take it");
  CLI::App* ssh_cmd =
      app.add_subcommand("ssh", "ssh's grammar over the connection (rsync -e, GIT_SSH_COMMAND)");
  ssh_cmd->add_option("-l")->description("remote user (the daemon's host must match)");
  ssh_cmd->add_option("-p")->description("remote port (the daemon's host must match)");
  ssh_cmd->add_option("-o")->description("ssh_config option; ones about logging in are refused");
  for (const auto& [flag, what] : {std::pair{"-t", "force a pty"},
                                   {"-T", "no pty"},
                                   {"-n", "stdin from /dev/null"},
                                   {"-s", "CMD is a subsystem (sftp)"},
                                   {"-G", "print the host, user and port, as ssh -G"},
                                   {"-V", "print the version"},
                                   {"-v", "say which options were ignored"}}) {
    ssh_cmd->add_flag(flag)->description(what);
  }
  CLI::App* run_cmd =
      app.add_subcommand("run", "run CMD on HOST with the server proxy's variables set");
  run_cmd->add_flag("--local")->description("run CMD here, with the variables of `env --local`");
  CLI::App* ssh_config_cmd = app.add_subcommand(
      "ssh-config",
      "print a Host block that makes stock ssh use the connection; --install / --uninstall: an "
      "Include of such blocks for every host tether runs, atop ~/.ssh/config");
  ssh_config_cmd->add_flag("--install")->description("the Include atop ~/.ssh/config (or -F FILE)");
  ssh_config_cmd->add_flag("--uninstall")->description("take the Include out again");

  DoctorOptions doctor;
  CLI::App* doctor_cmd =
      app.add_subcommand("doctor", "walk the troubleshooting checklist for HOST");
  doctor_cmd->add_option("host", doctor.host, "the host")->required();
  doctor_cmd->add_flag("--json", doctor.json, "machine-readable output");
  doctor_cmd->add_option("--probe", doctor.probe,
                         "URL to fetch from the server through --proxy (default a public "
                         "HTTPS site)");

  AgentInstallOptions agent_install;
  CLI::App* agent_cmd = app.add_subcommand("agent", "the server-side status agent");
  CLI::App* agent_install_cmd =
      agent_cmd->add_subcommand("install", "copy tether-agent to HOST and start it");
  agent_cmd->require_subcommand(1);
  agent_install_cmd->add_option("host", agent_install.host, "the host")->required();
  agent_install_cmd->add_option("--dir", agent_install.dir,
                                "where on the server (default ~/.local: bin/, lib/tether/)");
  agent_install_cmd
      ->add_option("--port", agent_install.port,
                   "serve on the server's 127.0.0.1:PORT instead of a unix socket")
      ->check(CLI::Range(1, 65535));
  agent_install_cmd->add_option("--socket", agent_install.socket,
                                "its unix socket on the server (default agent.sock in the "
                                "account's runtime directory; under DIR with --dir)");

  ServiceOptions service;
  CLI::App* service_cmd =
      app.add_subcommand("service", "bring HOST up at login: a systemd user unit or launchd agent");
  service_cmd->require_subcommand(1);
  CLI::App* service_install_cmd = service_cmd->add_subcommand(
      "install", "write and enable a service running `tether up HOST --foreground`");
  service_install_cmd->add_option("host", service.host, "the host")->required();
  service_install_cmd->add_flag("--print", service.print, "print the service file instead");
  CLI::App* service_uninstall_cmd =
      service_cmd->add_subcommand("uninstall", "stop and remove HOST's service");
  service_uninstall_cmd->add_option("host", service.host, "the host")->required();

  LoginOptions login;
  CLI::App* login_cmd = app.add_subcommand(
      "login", "log HOST's daemon in again when its reconnect needs a password or a code");
  login_cmd->add_option("host", login.host, "the host")->required();

  DownOptions down;
  CLI::App* down_cmd = app.add_subcommand("down", "stop HOST's daemon (or --all)");
  down_cmd->add_option("host", down.host, "the host to stop");
  down_cmd->add_flag("--all", down.all, "stop every host");

  StatusOptions status;
  CLI::App* status_cmd = app.add_subcommand("status", "show hosts, forwards and live counters");
  status_cmd->add_option("host", status.host, "only this host");
  status_cmd->add_flag("--json", status.json, "machine-readable output (docs/control-protocol.md)");
  status_cmd->add_flag("--remote", status.remote,
                       "add the server's GPUs, from tether-agent (`tether up HOST --agent`)");
  status_cmd->add_flag("--watch", status.watch,
                       "again every second: in place on a terminal, one after another elsewhere");

  GpusOptions gpus;
  CLI::App* gpus_cmd =
      app.add_subcommand("gpus", "every GPU of every host that is up, from tether-agent");
  gpus_cmd->add_flag("--json", gpus.json, "machine-readable output (docs/agent.md)");
  gpus_cmd->add_flag("--free", gpus.free, "only the GPUs nobody is using");

  LsOptions ls;
  CLI::App* ls_cmd = app.add_subcommand("ls", "one line per host");
  ls_cmd->add_flag("--json", ls.json, "machine-readable output");

  LogsOptions logs;
  CLI::App* logs_cmd = app.add_subcommand("logs", "show a host's daemon log");
  logs_cmd->add_option("host", logs.host, "the host")->required();
  logs_cmd->add_option("-n", logs.lines, "last N lines (0: all)")->check(CLI::NonNegativeNumber);
  logs_cmd->add_flag("-f,--follow", logs.follow, "keep printing what the daemon logs");

  // The shell completions' questions (cli/complete.h); a hidden verb.
  GlobalOptions before_verb;
  if (int verb = ParseLeadingGlobals(argc, argv, before_verb);
      verb < argc && std::string(argv[verb]) == "__complete") {
    return RunComplete(app, before_verb, std::vector<std::string>(argv + verb + 1, argv + argc));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  // The verb table: each verb's handler, by its subcommand.
  const std::pair<CLI::App*, std::function<int()>> verbs[] = {
      {up_cmd, [&] { return RunUp(global, up); }},
      {forward_cmd, [&] { return RunForward(global, forward); }},
      {env_cmd, [&] { return RunEnv(global, env); }},
      {doctor_cmd, [&] { return RunDoctor(global, doctor); }},
      {agent_install_cmd, [&] { return RunAgentInstall(global, agent_install); }},
      {service_install_cmd, [&] { return RunServiceInstall(global, service); }},
      {service_uninstall_cmd, [&] { return RunServiceUninstall(global, service); }},
      {login_cmd, [&] { return RunLogin(global, login); }},
      {down_cmd, [&] { return RunDown(global, down); }},
      {status_cmd, [&] { return RunStatus(global, status); }},
      {gpus_cmd, [&] { return RunGpus(global, gpus); }},
      {ls_cmd, [&] { return RunLs(global, ls); }},
      {logs_cmd, [&] { return RunLogs(global, logs); }},
  };
  for (const auto& [cmd, run] : verbs) {
    if (cmd->parsed()) return run();
  }
  return 2;
}

}  // namespace tether::cli
