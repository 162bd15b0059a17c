// tether ls [--json]: one line per host.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/format.h"
#include "cli/hosts.h"

namespace tether::cli {

int RunLs(const GlobalOptions& /*global*/, const LsOptions& options) {
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  nlohmann::json hosts = CollectStatus(*state, "");
  if (options.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& h : hosts) {
      out.push_back({{"host", h.value("host", "")},
                     {"state", h.value("state", "")},
                     {"pid", h.value("pid", 0)},
                     {"uptime_s", h.value("uptime_s", int64_t{0})},
                     {"forwards", h.value("forwards", nlohmann::json::array()).size()}});
    }
    std::printf("%s\n", nlohmann::json{{"hosts", out}}.dump(2).c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& h : hosts) {
    size_t forwards = h.value("forwards", nlohmann::json::array()).size();
    rows.push_back({h.value("host", ""), h.value("state", ""),
                    "pid " + std::to_string(h.value("pid", 0)),
                    HumanDuration(h.value("uptime_s", int64_t{0})),
                    std::to_string(forwards) + (forwards == 1 ? " forward" : " forwards")});
  }
  std::printf("%s", FormatTable(rows).c_str());
  return 0;
}

}  // namespace tether::cli
