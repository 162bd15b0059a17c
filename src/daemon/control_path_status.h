// What `status` says of the user's own ControlPath (daemon/control_path_listener.h).
#pragma once

#include <cstdint>
#include <string>

namespace tether::daemon {

enum class ControlPathState {
  kServing,      // we listen there
  kHeld,         // a live mux master is there (holder_pid)
  kNoDirectory,  // the directory does not exist
  kRefused,      // not safe, or not a socket: `detail` says why
  kStopped,      // `ssh -O stop` on it: not taken again until the next `up`
  kFailed,       // the path cannot be used at all (too long, bind failed): `detail`
};
// The word `status --json` prints: "serving", "held", "no directory", "refused",
// "stopped", "failed".
const char* ToString(ControlPathState state);

struct ControlPathStatus {
  std::string path;
  ControlPathState state = ControlPathState::kFailed;
  uint32_t holder_pid = 0;  // kHeld
  std::string detail;       // one sentence for status and doctor
};

}  // namespace tether::daemon
