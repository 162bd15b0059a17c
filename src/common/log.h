// Logging through spdlog. Lines carry the connection's prefix, e.g. "[gpu fwd 8000 #17]".
// Secrets (passphrases, tokens) are never logged.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace tether {

// Logs to `path` (appending) or, when empty, to stderr. `verbosity` 0 = info, 1 = debug,
// 2+ = trace.
void InitLogging(const std::string& path, int verbosity);

}  // namespace tether
