// Finding daemons in the state directory, and noticing the ones that died.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/state_dir.h"

namespace tether::cli {

// The host named (as a file name), or every host with a pid file.
std::vector<std::string> SelectHosts(const daemon::StateDir& state, const std::string& host);

struct HostProbe {
  bool running = false;
  pid_t pid = 0;
};
// Whether the host's daemon runs. A dead daemon's files are removed, and that is said
// once on stderr.
HostProbe ProbeHost(const daemon::StateDir& state, const std::string& name);

// The status replies of the named host (or of every host), as `status --json` prints
// them under "hosts". A daemon that holds its lock but does not answer is listed with
// state "unresponsive".
nlohmann::json CollectStatus(const daemon::StateDir& state, const std::string& host);

}  // namespace tether::cli
