// One request to a daemon's control socket and its reply (docs/control-protocol.md).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"

namespace tether::control {

// Sends `request` as one line and waits up to `timeout` for the reply line. Errors use
// the step "control".
Result<nlohmann::json> Request(const std::string& socket_path, const nlohmann::json& request,
                               std::chrono::milliseconds timeout);

}  // namespace tether::control
