#include "cli/hosts.h"

#include <sys/stat.h>

#include <cstdio>

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
      if (check.pid != 0) {
        std::fprintf(stderr, "tether: %s: daemon (pid %d) is gone; removed its stale files\n",
                     name.c_str(), static_cast<int>(check.pid));
      } else {
        std::fprintf(stderr, "tether: %s: removed stale files\n", name.c_str());
      }
    }
  }
  return probe;
}

}  // namespace tether::cli
