#include "cli/hosts.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

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
  struct Asked {
    std::string name;
    pid_t pid;
    Result<json> reply = MakeError("control", "not asked");
  };
  std::vector<Asked> asked;
  for (const std::string& name : SelectHosts(state, host)) {
    HostProbe probe = ProbeHost(state, name);
    if (probe.running) asked.push_back(Asked{name, probe.pid});
  }
  // Every daemon at once, 3 s each at most: a stuck one costs its 3 s, not 3 s per host.
  std::vector<std::thread> askers;
  for (Asked& a : asked) {
    askers.emplace_back([&state, &a] {
      a.reply =
          control::Request(state.SocketPath(a.name), {{"cmd", "status"}}, std::chrono::seconds(3));
    });
  }
  for (auto& t : askers) t.join();
  json hosts = json::array();
  for (Asked& a : asked) {
    if (!a.reply.ok()) {
      // Locked but no control socket yet: a `tether up` still connecting.
      struct stat st {};
      bool starting = ::stat(state.SocketPath(a.name).c_str(), &st) != 0;
      hosts.push_back(json{{"host", a.name},
                           {"state", starting ? "connecting" : "unresponsive"},
                           {"pid", a.pid},
                           {"error", a.reply.error().message},
                           {"forwards", json::array()}});
      continue;
    }
    json entry = std::move(*a.reply);
    entry.erase("ok");
    hosts.push_back(std::move(entry));
  }
  return hosts;
}

}  // namespace tether::cli
