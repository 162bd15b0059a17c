// The laptop side of tether-agent: where its token is kept and where it listens on the
// server, and fetching its status through the forward of `tether up HOST --agent` (a unix
// socket in the state directory, to the agent's unix socket on the server).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "config/forward_spec.h"
#include "daemon/state_dir.h"

namespace tether::cli {

struct AgentRecord {
  std::string token;
  std::string socket;  // the agent's unix socket on the server; empty: TCP on `port`
  int port = 8080;     // an install before sockets recorded only a port
};

// <config dir>/agents/HOST.json (0600): the token and where `agent install` started the
// agent: {"token": ..., "socket": "/run/user/1000/tether/agent.sock"} or, for
// --port (and every install before sockets), {"token": ..., "port": 8080}.
std::string AgentRecordPath(const std::string& host);
Result<AgentRecord> LoadAgentRecord(const std::string& host);
// The forward of `tether up HOST --agent`: the laptop socket HOST.agent.sock in the state
// directory to where `record` says the agent listens (its unix socket, or 127.0.0.1:port).
config::ForwardSpec AgentForwardSpec(const daemon::StateDir& state, const std::string& alias,
                                     const AgentRecord& record);
// Without persistence mode, nvidia-smi initializes every GPU on each run: seconds.
inline constexpr std::chrono::milliseconds kAgentStatusTimeout{10000};
// GET /status from the host's agent, with its token, within `timeout` in all (a slow
// agent or a stalled link gives an error, not a wait). Errors say what to run.
Result<nlohmann::json> FetchAgentStatus(const daemon::StateDir& state, const std::string& host,
                                        std::chrono::milliseconds timeout = kAgentStatusTimeout);
// The same with the record already loaded: for threads, as loading may ask the password
// database (getpwuid, not thread-safe) when HOME is unset.
Result<nlohmann::json> FetchAgentStatus(const daemon::StateDir& state, const std::string& host,
                                        const AgentRecord& record,
                                        std::chrono::milliseconds timeout);

}  // namespace tether::cli
