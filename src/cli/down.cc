// tether down HOST | --all: ask each daemon to stop, wait for it to go, and make sure
// nothing of it is left (process or files).
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/hosts.h"
#include "cli/ssh_include.h"
#include "control/control_client.h"
#include "daemon/state_dir.h"

namespace tether::cli {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(20);
constexpr int kGracefulPolls = 500;  // 10 s for a clean stop
constexpr int kKillPolls = 150;      // 3 s more after SIGTERM, then SIGKILL

// Whether `pid` has exited: no such process, or a zombie nobody reaped yet (a daemon's
// parent is init, which in a container may never reap).
bool ProcessGone(pid_t pid) {
  if (pid <= 0) return true;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
#ifdef __linux__
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t paren = line.rfind(')');
  if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') return true;
#endif
  return false;
}

// Gone: its lock is free (or its pid file removed, which the daemon does last but for
// exiting) and the process itself has exited.
bool WaitGone(const daemon::StateDir& state, const std::string& name, pid_t pid, int polls) {
  for (int i = 0; i < polls; ++i) {
    if (!daemon::CheckRunning(state.PidPath(name)).running && ProcessGone(pid)) return true;
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

// Stops one host; true when it is down (or was not up).
bool StopHost(const daemon::StateDir& state, const std::string& name) {
  HostProbe probe = ProbeHost(state, name);
  // `down` is the user's word that the host is done with: a record left by a daemon that
  // died (daemon/forwards_record.h) goes too, as one a killed daemon could not remove.
  if (!probe.running) {
    ::unlink(state.ForwardsPath(name).c_str());
    std::printf("%s is not up\n", name.c_str());
    return true;
  }
  auto reply = control::Request(state.SocketPath(name), {{"cmd", "stop"}}, std::chrono::seconds(3));
  bool gone = reply.ok() && WaitGone(state, name, probe.pid, kGracefulPolls);
  if (!gone && probe.pid > 0) {
    std::fprintf(stderr, "tether: %s: daemon (pid %d) did not stop cleanly; terminating it\n",
                 name.c_str(), static_cast<int>(probe.pid));
    ::kill(probe.pid, SIGTERM);
    gone = WaitGone(state, name, probe.pid, kKillPolls);
    if (!gone) {
      ::kill(probe.pid, SIGKILL);
      gone = WaitGone(state, name, probe.pid, kKillPolls);
    }
  }
  if (!gone) {
    std::fprintf(stderr, "tether: %s: daemon (pid %d) is still running\n", name.c_str(),
                 static_cast<int>(probe.pid));
    return false;
  }
  state.RemoveFiles(name);
  ::unlink(state.ForwardsPath(name).c_str());
  std::printf("%s is down\n", name.c_str());
  return true;
}

}  // namespace

int RunDown(const GlobalOptions& /*global*/, const DownOptions& options) {
  if (options.host.empty() && !options.all) {
    PrintError(MakeError("usage", "name a host, or --all"));
    return 2;
  }
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  std::vector<std::string> names = SelectHosts(*state, options.all ? "" : options.host);
  if (names.empty()) {
    std::printf("no hosts up\n");
    return 0;
  }
  bool ok = true;
  for (const auto& name : names) ok = StopHost(*state, name) && ok;
  RefreshHostBlocks(*state);
  return ok ? 0 : 1;
}

}  // namespace tether::cli
