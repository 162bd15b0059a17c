// Where daemons keep their files: $TETHER_STATE_DIR, else $XDG_RUNTIME_DIR/tether, else
// ~/.local/state/tether. The directory is 0700; per host: HOST.sock (control, 0600),
// HOST.mux (reserved for the OpenSSH mux socket), HOST.pid (pid, and the lock that
// makes one daemon per host), HOST.log, HOST.forwards (what the daemon runs, kept after an
// unclean death for `tether doctor`: daemon/forwards_record.h).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tether::daemon {

class StateDir {
 public:
  // Picks the directory from the environment, creates it 0700 (and tightens the mode
  // of an existing one we own). Refuses a directory owned by someone else.
  static Result<StateDir> Open();
  explicit StateDir(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  std::string SocketPath(const std::string& host) const { return File(host, ".sock"); }
  std::string MuxPath(const std::string& host) const { return File(host, ".mux"); }
  // The laptop end of the tether-agent forward (`tether up HOST --agent`).
  std::string AgentSocketPath(const std::string& host) const { return File(host, ".agent.sock"); }
  std::string PidPath(const std::string& host) const { return File(host, ".pid"); }
  std::string LogPath(const std::string& host) const { return File(host, ".log"); }
  std::string ForwardsPath(const std::string& host) const { return File(host, ".forwards"); }

  // Hosts that have a pid file here, sorted.
  std::vector<std::string> Hosts() const;
  // Removes the host's files (not the log, nor the forwards record: a daemon that died
  // leaves it for doctor; a clean stop and `down` remove it).
  void RemoveFiles(const std::string& host) const;

 private:
  std::string File(const std::string& host, const char* suffix) const;
  std::string path_;
};

// A host name as a file name: letters, digits and . _ - @ kept, others become '_'.
std::string FileNameFor(const std::string& host);

// The pid file, locked with flock(2) while a daemon lives. The lock, not the pid, says
// whether a daemon runs: a killed daemon's lock goes away with it.
class PidLock {
 public:
  // Takes the lock or reports who holds it.
  struct Outcome {
    bool acquired = false;
    pid_t holder = 0;  // when not acquired: the pid written in the file (0 if none)
  };
  static Result<Outcome> TryAcquire(const std::string& path, PidLock* lock);
  // Writes our pid into the locked file.
  Status WritePid(pid_t pid);
  bool held() const { return fd_.valid(); }
  void Release();

 private:
  UniqueFd fd_;
  std::string path_;
};

// Whether a daemon holds the lock at `path` now, and its pid.
struct LiveCheck {
  bool running = false;
  pid_t pid = 0;
};
LiveCheck CheckRunning(const std::string& pid_path);

}  // namespace tether::daemon
