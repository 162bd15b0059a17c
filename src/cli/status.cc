// tether status [HOST] [--json] [--watch]: every daemon found in the state directory, its
// connection and its forwards with live counters. Stale state is reported once and
// removed.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/agent.h"
#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/format.h"
#include "cli/gpu_table.h"
#include "cli/hosts.h"
#include "daemon/state_dir.h"

namespace tether::cli {
namespace {

// Connections a forward refused: its listener at a cap, or the owner check (all reasons).
uint64_t RefusedTotal(const nlohmann::json& forward) {
  const nlohmann::json r = forward.value("refused", nlohmann::json::object());
  return r.value("connections", uint64_t{0}) + r.value("handshakes", uint64_t{0}) +
         r.value("timeouts", uint64_t{0}) + r.value("owner", uint64_t{0});
}

// "refused 15: 10 over the connection cap, 2 over the handshake cap, 0 handshake timeouts,
// 3 not the owner's"
std::string RefusedNote(const nlohmann::json& forward) {
  const nlohmann::json r = forward.value("refused", nlohmann::json::object());
  return "refused " + std::to_string(RefusedTotal(forward)) + ": " +
         std::to_string(r.value("connections", uint64_t{0})) + " over the connection cap, " +
         std::to_string(r.value("handshakes", uint64_t{0})) + " over the handshake cap, " +
         std::to_string(r.value("timeouts", uint64_t{0})) + " handshake timeouts, " +
         std::to_string(r.value("owner", uint64_t{0})) + " not the owner's";
}

// The servers' GPUs, from their agents.
void PrintRemote(const nlohmann::json& hosts) {
  using nlohmann::json;
  std::vector<std::vector<std::string>> rows = {
      {"HOST", "GPU", "NAME", "UTIL", "MEMORY", "TEMP", "POWER", "PROCESSES"}};
  std::vector<std::string> notes;
  for (const auto& h : hosts) {
    const json& r = h.value("remote", json::object());
    std::string name = h.value("host", "");
    if (r.contains("error")) {
      notes.push_back(name + ": " + r.value("error", "") +
                      (r.value("hint", "").empty() ? "" : " (" + r.value("hint", "") + ")"));
      continue;
    }
    for (const auto& g : r.value("gpus", json::array())) {
      std::vector<std::string> row = GpuCells(name, g);
      row.push_back(GpuNumberCell(g["power_watts"], " W"));
      row.push_back(std::to_string(g.value("processes", json::array()).size()));
      rows.push_back(std::move(row));
    }
    const json& gpu = r.value("gpu", json::object());
    if (gpu.value("state", "") != "ok") {
      notes.push_back(
          name + ": GPUs " + gpu.value("state", "unknown") +
          (gpu.value("error", json()).is_string() ? ": " + gpu.value("error", "") : ""));
    }
    const json& cpu = r.value("cpu", json::object());
    const json& memory = r.value("memory", json::object());
    if (cpu.contains("load1")) {
      char line[256];
      std::snprintf(line, sizeof line, "%s: load %.2f on %d CPUs", name.c_str(),
                    cpu.value("load1", 0.0), cpu.value("count", 0));
      std::string m = line;
      if (memory.contains("available_bytes") && memory.contains("total_bytes")) {
        m += ", memory " + HumanBytes(memory.value("available_bytes", uint64_t{0})) + " free of " +
             HumanBytes(memory.value("total_bytes", uint64_t{0}));
      }
      notes.push_back(m);
    }
  }
  if (rows.size() > 1) std::printf("\n%s", FormatTable(rows).c_str());
  if (!notes.empty()) std::printf("\n");
  for (const auto& n : notes) std::printf("  %s\n", n.c_str());
}

// `status`'s line for --fast-exec: the runner's state and how commands went.
std::string FastExecNote(const nlohmann::json& f) {
  std::string state = f.value("state", "");
  std::string line =
      "fast exec: " + (state == "ready" ? std::string("runner ready") : "runner " + state);
  line += ", " + std::to_string(f.value("by_runner", uint64_t{0})) + " command(s) by it, " +
          std::to_string(f.value("as_sessions", uint64_t{0})) +
          " it could not take ran as sessions";
  std::string why = f.value("why", "");
  if (!why.empty() && state != "ready") line += " (" + why + ")";
  return line;
}

// "up/wanted" lanes ("-" when none are wanted), e.g. "1/1", "0/1".
std::string LanesCell(const nlohmann::json& host) {
  const auto& lanes = host.value("lanes", nlohmann::json::object());
  int wanted = lanes.value("wanted", 0);
  if (wanted == 0) return "-";
  int up = 0;
  for (const auto& lane : lanes.value("open", nlohmann::json::array())) {
    up += lane.value("state", "") == "up" ? 1 : 0;
  }
  return std::to_string(up) + "/" + std::to_string(wanted);
}

}  // namespace

namespace {

// One look: the table (or JSON) as `tether status` prints it. `watching`: JSON on one line.
int PrintStatus(daemon::StateDir& state, const StatusOptions& options, bool watching) {
  using nlohmann::json;
  json hosts = CollectStatus(state, options.host);
  if (options.remote) {
    for (auto& h : hosts) {
      auto remote = FetchAgentStatus(state, h.value("host", ""));
      h["remote"] = remote.ok()
                        ? *remote
                        : json{{"error", remote.error().message}, {"hint", remote.error().hint}};
    }
  }

  if (options.json) {
    std::printf("%s\n", json{{"hosts", hosts}}.dump(watching ? -1 : 2).c_str());
    return 0;
  }
  if (hosts.empty()) {
    std::printf(options.host.empty() ? "no hosts up\n" : "%s is not up\n", options.host.c_str());
    return options.host.empty() ? 0 : 1;
  }
  std::vector<std::vector<std::string>> rows = {
      {"HOST", "STATE", "PID", "UPTIME", "RTT", "RECONNECTS", "LANES", "TARGET"}};
  std::vector<std::string> notes;
  for (const auto& h : hosts) {
    std::string target = h.value("user", "") + "@" + h.value("hostname", "") + ":" +
                         std::to_string(h.value("port", 0));
    std::string rtt = h.contains("rtt_ms") && h["rtt_ms"].is_number()
                          ? std::to_string(h["rtt_ms"].get<int>()) + " ms"
                          : "-";
    rows.push_back({h.value("host", ""), h.value("state", ""), std::to_string(h.value("pid", 0)),
                    HumanDuration(h.value("uptime_s", int64_t{0})), rtt,
                    std::to_string(h.value("reconnects", 0)), LanesCell(h), target});
    std::string lanes_off = h.value("lanes", json::object()).value("off", "");
    if (!lanes_off.empty()) notes.push_back(h.value("host", "") + ": lanes off: " + lanes_off);
    if (h.value("state", "") == "needs-login") {
      notes.push_back(h.value("host", "") +
                      ": the server wants a password or a code again: tether login " +
                      h.value("host", ""));
    }
    if (h.contains("fast_exec") && h["fast_exec"].is_object()) {
      notes.push_back(h.value("host", "") + ": " + FastExecNote(h["fast_exec"]));
    }
    std::string control_path = ControlPathNote(h);
    if (!control_path.empty()) notes.push_back(h.value("host", "") + ": " + control_path);
  }
  std::printf("%s", FormatTable(rows).c_str());
  for (const auto& n : notes) std::printf("  %s\n", n.c_str());
  std::vector<std::vector<std::string>> fwd_rows = {{"HOST", "FORWARD", "STATE", "LIVE", "TOTAL",
                                                     "FAILED", "REFUSED", "IN", "OUT", "RATE IN",
                                                     "RATE OUT"}};
  std::vector<std::string> errors;
  for (const auto& h : hosts) {
    for (const auto& f : h.value("forwards", json::array())) {
      std::string line = ForwardFlagLine(f);
      if (f.contains("auto") && f["auto"].is_object()) {
        const json& a = f["auto"];
        std::string process = a.value("process", "");
        line += "  auto" + (process.empty() ? std::string() : ": " + process);
        std::string url = a.value("url", "");
        if (!url.empty()) errors.push_back(h.value("host", "") + ": open " + url);
        uint16_t server_port = a.value("server_port", uint16_t{0});
        if (server_port != 0 && server_port != a.value("local_port", server_port)) {
          errors.push_back(h.value("host", "") + ": " + ForwardFlagLine(f) + ": port " +
                           std::to_string(server_port) + " is taken on the laptop");
        }
      }
      fwd_rows.push_back({h.value("host", ""), line, f.value("state", ""),
                          std::to_string(f.value("live", 0)), std::to_string(f.value("total", 0)),
                          std::to_string(f.value("failed", 0)), std::to_string(RefusedTotal(f)),
                          HumanBytes(f.value("bytes_in", uint64_t{0})),
                          HumanBytes(f.value("bytes_out", uint64_t{0})),
                          HumanRate(f.value("rate_in_bps", uint64_t{0})),
                          HumanRate(f.value("rate_out_bps", uint64_t{0}))});
      std::string error = f.value("error", "");
      if (!error.empty()) errors.push_back(h.value("host", "") + ": " + error);
      if (RefusedTotal(f) > 0) {
        errors.push_back(h.value("host", "") + ": " + ForwardFlagLine(f) + ": " + RefusedNote(f));
      }
    }
  }
  if (fwd_rows.size() > 1) std::printf("\n%s", FormatTable(fwd_rows).c_str());
  for (const auto& e : errors) std::printf("  %s\n", e.c_str());
  if (options.remote) PrintRemote(hosts);
  return 0;
}

// Whether the table can be redrawn in place: a terminal that knows the escapes.
bool RedrawInPlace() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) != 0 && term != nullptr && std::strcmp(term, "dumb") != 0;
}

}  // namespace

int RunStatus(const GlobalOptions& /*global*/, const StatusOptions& options) {
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  if (!options.watch) return PrintStatus(*state, options, false);
  // For a pane kept open: the table redrawn in place every second on a terminal (cursor home,
  // clear; no colors, so NO_COLOR has nothing to turn off); elsewhere, one table (or one JSON
  // line) after another, each under its time, for a log or a script. Until interrupted.
  const bool in_place = !options.json && RedrawInPlace();
  while (true) {
    if (in_place) std::printf("\x1b[H\x1b[2J");
    if (!options.json) {
      const std::time_t now = std::time(nullptr);
      char when[32];
      std::strftime(when, sizeof when, "%H:%M:%S", std::localtime(&now));
      std::printf("%s  every 1 s%s\n", when, in_place ? ", Ctrl-C to stop" : "");
    }
    (void)PrintStatus(*state, options, true);
    if (!in_place && !options.json) std::printf("\n");
    if (std::fflush(stdout) != 0) return 0;  // the reader went away
    ::sleep(1);
  }
}

}  // namespace tether::cli
