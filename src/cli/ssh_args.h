// ssh's argument grammar for `tether ssh` (rsync -e 'tether ssh', GIT_SSH_COMMAND,
// scp -S, sshfs -o ssh_command): options first, bundled or not (-tt, -p2222, -p 2222),
// then the destination, then the command words.
//
//   tether ssh gpu nvidia-smi                    a command
//   tether ssh -l alice -p 2222 gpu              a shell (pty when stdin is a terminal)
//   tether ssh -o SendEnv=GIT_PROTOCOL gpu git-upload-pack 'repo'     (git, protocol v2)
//   tether ssh -x -oClearAllForwardings=yes -oRequestTTY=no -s -- gpu sftp        (scp)
//
// The connection itself is the daemon's, set up once by `tether up`: options about how to
// connect or log in (-i, -J, -F, -c, IdentityFile, ProxyJump, ...) cannot apply to it and
// are refused with a reason, as are features it does not offer (-A, -X, -L/-R/-D, -N,
// -f, -M, -O). Options that only matter to a connection of one's own and are harmless to
// share (BatchMode, StrictHostKeyChecking, ServerAliveInterval, -4, -C, -q, ...) are
// accepted and ignored, each with a note that -v prints. Unknown -o options are refused,
// as ssh refuses them. docs/cli.md has the full table.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace tether::cli {

struct SshArgs {
  std::string host;
  std::vector<std::string> command;   // empty: a shell
  std::string user;                   // -l, -o User: for starting the daemon
  std::string port;                   // -p, -o Port: likewise
  bool force_tty = false;             // -t, -o RequestTTY=yes|force
  bool no_tty = false;                // -T, -o RequestTTY=no
  bool stdin_null = false;            // -n
  bool subsystem = false;             // -s: the command is a subsystem name (sftp)
  bool print_config = false;          // -G: what tether ssh knows of the host, then exit
  bool print_version = false;         // -V
  int verbose = 0;                    // -v, -vv, ...
  std::vector<std::string> send_env;  // -o SendEnv patterns: local variables to pass
  std::vector<std::string> set_env;   // -o SetEnv NAME=value
  std::vector<std::string> notes;     // options accepted and ignored, for -v
};

// An Error (step "ssh") names the option, says why it cannot apply and what to do
// instead; `tether ssh` prints it and exits 255, as ssh does for a bad option.
Result<SshArgs> ParseSshArgs(const std::vector<std::string>& args);

// NAME=value for each variable of `environ` that a SendEnv pattern (with * and ?) of
// `patterns` matches, as ssh sends them.
std::vector<std::string> SelectSendEnv(const std::vector<std::string>& patterns,
                                       char* const* environ);

}  // namespace tether::cli
