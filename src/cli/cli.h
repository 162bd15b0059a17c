// The tether command line: parse, talk to the daemon, print. One file per verb.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/forward_spec.h"
#include "daemon/state_dir.h"

namespace tether::cli {

// Options that come before the verb, as with ssh.
struct GlobalOptions {
  std::string config_file;  // -F FILE
  int verbosity = 0;        // -v, -vv
};

// `tether up HOST --agent` without a port: reach the agent where `agent install` recorded
// it (a unix socket on the server, or an older install's port).
inline constexpr int kAgentFromRecord = -1;

struct UpOptions {
  std::string destination;
  std::vector<std::string> local_forwards;    // -L
  std::vector<std::string> remote_forwards;   // -R
  std::vector<std::string> dynamic_forwards;  // -D
  std::vector<std::string> options;           // -o
  int proxy_port = 0;                         // --proxy[=PORT]; 0: no server proxy
  int agent_port = 0;          // --agent[=PORT]; 0: no agent forward; kAgentFromRecord: --agent
  std::string upstream;        // --upstream URL
  bool proxy_open = false;     // --proxy-open
  int lanes = -1;              // --lanes N; -1: config.toml or the default
  std::string laptop_network;  // --laptop-network; "": config.toml or public
  std::string jump;            // -J [user@]host[:port][,...]
  std::string user;            // -l
  int port = 0;                // -p
  std::vector<std::string> identity_files;  // -i
  bool foreground = false;
  bool auto_forward = false;  // --auto-forward
  bool fast_exec = false;     // --fast-exec
  // --auto-forward-allow / -deny RANGES, --auto-forward-max N (each implies --auto-forward);
  // unset: config.toml's.
  std::optional<std::string> auto_forward_allow, auto_forward_deny;
  std::optional<int> auto_forward_max;
};

struct ForwardOptions {
  std::string host;
  std::vector<std::string> local_forwards;    // -L
  std::vector<std::string> remote_forwards;   // -R
  std::vector<std::string> dynamic_forwards;  // -D
  std::vector<std::string> cancels;           // --cancel [-L|-R|-D]SPEC
};

struct EnvOptions {
  std::string host;
  std::string shell = "sh";  // sh (bash, zsh) or fish
  bool local = false;        // for local programs, through the host's -D port
};

struct DoctorOptions {
  std::string host;
  bool json = false;
  std::string probe;  // URL fetched from the server through --proxy
};

struct LoginOptions {
  std::string host;
};

struct DownOptions {
  std::string host;
  bool all = false;
};

struct StatusOptions {
  std::string host;
  bool json = false;
  bool remote = false;  // add the server's GPUs (tether-agent, through `up --agent`)
  bool watch = false;   // again every second, in place on a terminal
};

struct GpusOptions {
  bool json = false;
  bool free = false;  // only the free GPUs (cli/gpu_table.h says which)
};

struct LsOptions {
  bool json = false;
};

struct ServiceOptions {
  std::string host;
  bool print = false;  // print the unit instead of installing it
};

struct LogsOptions {
  std::string host;
  int lines = 200;
  bool follow = false;
};

int RunUp(const GlobalOptions& global, const UpOptions& options);
int RunForward(const GlobalOptions& global, const ForwardOptions& options);
int RunEnv(const GlobalOptions& global, const EnvOptions& options);
int RunDoctor(const GlobalOptions& global, const DoctorOptions& options);
int RunDown(const GlobalOptions& global, const DownOptions& options);
int RunLogin(const GlobalOptions& global, const LoginOptions& options);
int RunStatus(const GlobalOptions& global, const StatusOptions& options);
int RunGpus(const GlobalOptions& global, const GpusOptions& options);
int RunLs(const GlobalOptions& global, const LsOptions& options);
int RunLogs(const GlobalOptions& global, const LogsOptions& options);

// Verbs with ssh's own argument grammar, parsed by hand (everything after HOST is the
// remote command, options included). `args` are the words after the verb.
int RunExecArgs(const GlobalOptions& global, const std::vector<std::string>& args);
int RunSshArgs(const GlobalOptions& global, const std::vector<std::string>& args);
int RunRunArgs(const GlobalOptions& global, const std::vector<std::string>& args);
int RunSshConfigArgs(const GlobalOptions& global, const std::vector<std::string>& args);

// Starts the host's daemon with `tether up HOST UP_ARGS` (no forwards) when none runs.
// Its messages go to stderr: stdout belongs to the caller's command.
Status EnsureUp(const GlobalOptions& global, const std::string& host,
                const std::vector<std::string>& up_args);

struct AgentInstallOptions {
  std::string host;
  std::string dir;     // on the server; "" = ~/.local
  int port = 0;        // TCP on the server's loopback instead of a unix socket; 0: none
  std::string socket;  // the unix socket's path on the server; "": the agent's default
};
int RunAgentInstall(const GlobalOptions& global, const AgentInstallOptions& options);
int RunServiceInstall(const GlobalOptions& global, const ServiceOptions& options);
int RunServiceUninstall(const GlobalOptions& global, const ServiceOptions& options);

// Asks the running daemon of `alias` (a state-file name) to add `specs` (ones it already
// has are kept as they are), waits for the server's answer to remote ones (bounded) and
// prints every forward it now has. Returns the exit code: 1 if a new forward failed.
int AddForwardsToRunning(const daemon::StateDir& state, const std::string& alias,
                         const std::vector<config::ForwardSpec>& specs);

// Parses argv and runs the verb; returns the process exit code.
int Main(int argc, char** argv);

}  // namespace tether::cli
