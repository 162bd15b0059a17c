// tether-agent's life from parsed options to exit: token, bind, optional daemonizing,
// lease watcher, serving, and a clean stop on SIGTERM/SIGINT/SIGHUP. main() only parses.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace tether::agent {

struct AgentOptions {
  // TCP ADDR:PORT; empty: a unix socket (socket, else agent.sock in the runtime
  // directory, runtime_dir.h).
  std::string listen;
  std::string socket;
  bool print_socket = false;
  std::string token_file;  // empty: DefaultTokenPath()
  bool print_token = false;
  std::vector<std::string> work_dirs;
  std::string lease_command;
  std::optional<double> lease_hours;
  bool daemon = false;
  std::string log_file;  // with --daemon; empty: DefaultLogPath()
  std::string pid_file;  // empty: none
  std::string nvidia_smi = "nvidia-smi";
};

// ~/.local/state/tether/agent.log
std::string DefaultLogPath();

// Exit status: 0 done (or token printed, or daemon started), 1 failure, 2 bad options.
int RunAgent(const AgentOptions& options, const std::string& version);

}  // namespace tether::agent
