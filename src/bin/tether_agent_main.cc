// tether-agent: the server-side status agent. Parses options; agent::RunAgent does the rest.
//
// What the installer (`tether agent install HOST`) can rely on:
//   tether-agent --version        prints "tether-agent X.Y.Z", exit 0
//   tether-agent --print-token    prints the 64-hex-digit token (creating it, 0600, in
//                                 ~/.config/tether/agent-token or --token-file), exit 0
//   tether-agent --daemon [--pid-file F] [--log-file L] [options]
//                                 binds first, then detaches (setsid, stdio to the log,
//                                 default ~/.local/state/tether/agent.log) and exits 0
//                                 once it listens, printing where and the pid; exit 1 (and
//                                 a reason on stderr) when the socket or port is taken, etc.
//   tether-agent --print-socket [--socket P]
//                                 prints the unix socket's absolute path, exit 0
//   tether-agent --runner [--socket P]
//                                 the resident runner (agent/runner.h): prints
//                                 "tether-runner 1 SOCKET" once it listens, runs commands
//                                 that come on SOCKET, ends when its stdin closes
//   Without --daemon it stays in the foreground (for systemd-run --user, nohup, tmux)
//   and logs to stderr. SIGTERM, SIGINT or SIGHUP stop it cleanly (pid file removed).
// Exit status: 0 success, 1 failure, 2 bad options. Linux only, linked statically: it
// needs nothing on a server but the kernel. docs/agent.md has the HTTP API.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "agent/run.h"
#include "agent/runner.h"

int main(int argc, char** argv) {
  try {
    tether::agent::AgentOptions o;
    CLI::App app{"tether-agent: GPU, memory, disk and port status over HTTP with a bearer token"};
    app.set_version_flag("--version", std::string("tether-agent ") + TETHER_VERSION);
    app.add_option("--listen", o.listen,
                   "serve on TCP ADDR:PORT ([::1]:PORT for IPv6) instead of a unix socket");
    app.add_option("--socket", o.socket,
                   "unix socket to serve on (default agent.sock in $XDG_RUNTIME_DIR/tether, "
                   "/run/user/UID/tether or ~/.cache/tether/run)");
    app.add_flag("--print-socket", o.print_socket,
                 "print the unix socket's path (making its directory) and exit");
    app.add_option("--token-file", o.token_file,
                   "token file (default ~/.config/tether/agent-token)");
    app.add_flag("--print-token", o.print_token,
                 "print the token (creating it if missing) and exit");
    app.add_option("--work-dir", o.work_dirs,
                   "report the disk holding this directory too (repeatable)")
        ->allow_extra_args(false);
    app.add_option("--lease-command", o.lease_command,
                   "run this shell command once when the lease runs out; enables the lease");
    app.add_option("--lease-hours", o.lease_hours,
                   "initial lease length in hours (without it, the first POST /extend arms "
                   "the lease)");
    app.add_flag("--daemon", o.daemon, "detach once listening");
    app.add_option("--log-file", o.log_file,
                   "log file under --daemon (default ~/.local/state/tether/agent.log)");
    app.add_option("--pid-file", o.pid_file, "write the agent's pid here");
    app.add_option("--nvidia-smi", o.nvidia_smi, "nvidia-smi program to run")
        ->capture_default_str();
    bool runner = false;
    app.add_flag("--runner", runner,
                 "be the resident runner of `tether up --fast-exec` (on --socket, else a fresh "
                 "runner-*.sock in the runtime directory) instead of the status agent");
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // --help and --version come through here with status 0; misuse exits 2, as documented.
      return app.exit(e) == 0 ? 0 : 2;
    }
    if (runner) return tether::agent::RunRunner({.socket = o.socket});
    return tether::agent::RunAgent(o, TETHER_VERSION);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tether-agent: internal error: %s\n", e.what());
    return 70;
  }
}
