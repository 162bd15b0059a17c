#include "cli/hosts.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>

#include "control/control_client.h"

namespace tether::cli {

std::vector<std::string> SelectHosts(const daemon::StateDir& state, const std::string& host) {
  if (!host.empty()) return {daemon::FileNameFor(host)};
  return state.Hosts();
}

HostProbe ProbeHost(const daemon::StateDir& state, const std::string& name) {
  HostProbe probe;
  daemon::LiveCheck check = daemon::CheckRunning(state.PidPath(name));
  probe.running = check.running;
  probe.pid = check.pid;
  if (!check.running) {
    struct stat st {};
    bool any = ::stat(state.PidPath(name).c_str(), &st) == 0 ||
               ::stat(state.SocketPath(name).c_str(), &st) == 0;
    if (any) {
      state.RemoveFiles(name);
      // Its record stays (daemon/forwards_record.h): doctor tells what it ran.
      const bool recorded = ::stat(state.ForwardsPath(name).c_str(), &st) == 0;
      if (check.pid != 0) {
        std::fprintf(stderr, "tether: %s: daemon (pid %d) is gone; removed its stale files%s\n",
                     name.c_str(), static_cast<int>(check.pid),
                     recorded ? ("; `tether doctor " + name + "` checks its ports").c_str() : "");
      } else {
        std::fprintf(stderr, "tether: %s: removed stale files\n", name.c_str());
      }
    }
  }
  return probe;
}

nlohmann::json CollectStatus(const daemon::StateDir& state, const std::string& host) {
  using nlohmann::json;
  json hosts = json::array();
  for (const std::string& name : SelectHosts(state, host)) {
    HostProbe probe = ProbeHost(state, name);
    if (!probe.running) continue;
    auto reply =
        control::Request(state.SocketPath(name), {{"cmd", "status"}}, std::chrono::seconds(3));
    if (!reply.ok()) {
      // Locked but no control socket yet: a `tether up` still connecting.
      struct stat st {};
      bool starting = ::stat(state.SocketPath(name).c_str(), &st) != 0;
      hosts.push_back(json{{"host", name},
                           {"state", starting ? "connecting" : "unresponsive"},
                           {"pid", probe.pid},
                           {"error", reply.error().message},
                           {"forwards", json::array()}});
      continue;
    }
    json entry = std::move(*reply);
    entry.erase("ok");
    hosts.push_back(std::move(entry));
  }
  return hosts;
}

}  // namespace tether::cli
