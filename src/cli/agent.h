// The laptop side of tether-agent: where its token is kept, and fetching its status
// through the forward of `tether up HOST --agent` (a unix socket in the state directory).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "daemon/state_dir.h"

namespace tether::cli {

struct AgentRecord {
  std::string token;
  int port = 8080;
};

// <config dir>/agents/HOST.json (0600): the token and port `agent install` recorded.
std::string AgentRecordPath(const std::string& host);
Result<AgentRecord> LoadAgentRecord(const std::string& host);
// GET /status from the host's agent, with its token. Errors say what to run.
Result<nlohmann::json> FetchAgentStatus(const daemon::StateDir& state, const std::string& host);

}  // namespace tether::cli
