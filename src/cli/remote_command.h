// Runs one command on a host over its daemon's connection (through HOST.mux, as tether
// exec) and collects what it prints: for verbs that need the server's answer, such as
// `tether agent install`. Bounded in time and output.
#pragma once

#include <chrono>
#include <string>

#include "common/result.h"
#include "daemon/state_dir.h"

namespace tether::cli {

struct RemoteOutput {
  int exit = -1;
  std::string out;
  std::string err;
};

// `input` goes to the command's stdin, then EOF. Errors when the daemon cannot be reached
// or the command does not end within `timeout`.
Result<RemoteOutput> RunRemoteCommand(const daemon::StateDir& state, const std::string& host,
                                      const std::string& command, const std::string& input,
                                      std::chrono::milliseconds timeout);

}  // namespace tether::cli
