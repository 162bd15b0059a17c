// tether-agent --runner: the resident runner. Started by the daemon as a command of its
// own connection (so its environment is what sshd gives a command: the variables sshd
// sets, whatever the user's rc files add for `ssh host cmd`, the session's limits and
// umask), it listens on a fresh unix socket in the owner's 0700 runtime directory, says
// "tether-runner 1 PATH" on stdout, and runs each command that comes over that socket
// (one direct-streamlocal channel per command, common/runner_wire.h) as sshd would:
// `$SHELL -c CMD` in a new session (setsid), in the directory sshd started it in (the
// home directory), with the captured
// environment, stdin/stdout/stderr on pipes moved with backpressure, and the exit status
// (128+n for a signal) said last. A client that goes away ends the command's process
// group with SIGHUP. Connections from another uid are closed unread.
//
// The command's shell does not read the rc files again (their effect is in the captured
// environment): it starts one shell level down (SHLVL=1), where bash skips ~/.bashrc.
//
// The shell's startup files are watched: when one changes, the next command is refused
// (the daemon runs it as a session, which reads them) and the runner ends once its
// commands have, to be started again with the new environment. It also ends when its own
// stdin closes (the daemon's session is gone), after its commands. Never spins: it sleeps
// in poll(2) until a descriptor or a child wants it.
#pragma once

#include <string>

namespace tether::agent {

struct RunnerOptions {
  std::string socket;  // empty: runner-RANDOM.sock in the runtime directory
};

// Exit status: 0 after a clean end, 1 when it cannot listen.
int RunRunner(const RunnerOptions& options);

}  // namespace tether::agent
