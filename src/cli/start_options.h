// `tether up HOST` on a host whose daemon runs: what it asks for that only takes effect
// when a daemon starts, compared with what the running one runs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace tether::cli {

// The start-time options given on the command line, resolved where the daemon's
// `status` reports the resolved value; unset: not given.
struct StartOptions {
  std::optional<std::string> laptop_network;     // --laptop-network
  std::optional<int> lanes;                      // --lanes
  std::optional<std::string> user;               // -l, as resolved
  std::optional<uint16_t> port;                  // -p, as resolved
  std::optional<std::vector<std::string>> jump;  // -J, the ProxyJump hops resolved
  std::vector<std::string> identity_files;       // -i
  std::vector<std::string> ssh_options;          // -o Keyword=value
  // --proxy-open with --proxy=PORT: a server proxy already on PORT must be open too (one
  // added now is made open).
  std::optional<uint16_t> proxy_open_port;
  // --auto-forward: the daemon must be watching the server's ports already; and with the
  // ranges (as FormatPortRanges writes them) and the cap given.
  bool auto_forward = false;
  // --fast-exec: the daemon must run the resident runner already.
  bool fast_exec = false;
  std::optional<std::string> auto_forward_allow, auto_forward_deny;
  std::optional<int> auto_forward_max;
};

// An error naming every option of `given` that differs from what the daemon whose
// `status` reply is `running` runs, with the running value and how to apply it; none
// when all agree (the same options given again are fine).
std::optional<Error> StartOptionConflicts(const std::string& alias, const nlohmann::json& running,
                                          const StartOptions& given);

}  // namespace tether::cli
