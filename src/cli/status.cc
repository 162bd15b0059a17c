// tether status [HOST] [--json]: every daemon found in the state directory, its
// connection and its forwards with live counters. Stale state is reported once and
// removed.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/format.h"
#include "cli/hosts.h"
#include "daemon/state_dir.h"

namespace tether::cli {

int RunStatus(const GlobalOptions& /*global*/, const StatusOptions& options) {
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  using nlohmann::json;
  json hosts = CollectStatus(*state, options.host);

  if (options.json) {
    std::printf("%s\n", json{{"hosts", hosts}}.dump(2).c_str());
    return 0;
  }
  if (hosts.empty()) {
    std::printf(options.host.empty() ? "no hosts up\n" : "%s is not up\n", options.host.c_str());
    return options.host.empty() ? 0 : 1;
  }
  std::vector<std::vector<std::string>> rows = {
      {"HOST", "STATE", "PID", "UPTIME", "RTT", "RECONNECTS", "TARGET"}};
  for (const auto& h : hosts) {
    std::string target = h.value("user", "") + "@" + h.value("hostname", "") + ":" +
                         std::to_string(h.value("port", 0));
    std::string rtt = h.contains("rtt_ms") && h["rtt_ms"].is_number()
                          ? std::to_string(h["rtt_ms"].get<int>()) + " ms"
                          : "-";
    rows.push_back({h.value("host", ""), h.value("state", ""), std::to_string(h.value("pid", 0)),
                    HumanDuration(h.value("uptime_s", int64_t{0})), rtt,
                    std::to_string(h.value("reconnects", 0)), target});
  }
  std::printf("%s", FormatTable(rows).c_str());
  std::vector<std::vector<std::string>> fwd_rows = {
      {"HOST", "FORWARD", "STATE", "LIVE", "TOTAL", "FAILED", "IN", "OUT", "RATE IN", "RATE OUT"}};
  std::vector<std::string> errors;
  for (const auto& h : hosts) {
    for (const auto& f : h.value("forwards", json::array())) {
      fwd_rows.push_back({h.value("host", ""), ForwardFlagLine(f), f.value("state", ""),
                          std::to_string(f.value("live", 0)), std::to_string(f.value("total", 0)),
                          std::to_string(f.value("failed", 0)),
                          HumanBytes(f.value("bytes_in", uint64_t{0})),
                          HumanBytes(f.value("bytes_out", uint64_t{0})),
                          HumanRate(f.value("rate_in_bps", uint64_t{0})),
                          HumanRate(f.value("rate_out_bps", uint64_t{0}))});
      std::string error = f.value("error", "");
      if (!error.empty()) errors.push_back(h.value("host", "") + ": " + error);
    }
  }
  if (fwd_rows.size() > 1) std::printf("\n%s", FormatTable(fwd_rows).c_str());
  for (const auto& e : errors) std::printf("  %s\n", e.c_str());
  return 0;
}

}  // namespace tether::cli
