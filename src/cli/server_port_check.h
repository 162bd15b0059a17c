// Doctor's check of the server's side of remote forwards and the server proxy: whose is
// each one's port in the server's listen table. Another account there is a failure that
// names the port and the account, whatever the daemon believes (it may not have noticed
// yet that its link died and the port was taken).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/server_ports.h"

namespace tether::cli {

struct ServerPortFinding {
  std::string name;
  std::string status;  // pass, fail
  std::string evidence;
  std::string fix;
};

// One finding per remote forward or server proxy in `forwards` (status --json's list)
// whose port another account holds; one pass when none does; none when the table cannot
// be read there (the other checks say what they can).
std::vector<ServerPortFinding> CheckServerPortHolders(const ServerCommand& run,
                                                      const nlohmann::json& forwards,
                                                      const std::string& alias);

}  // namespace tether::cli
