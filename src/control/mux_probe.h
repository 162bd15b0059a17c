// Who holds a ControlPath: nobody (no file), nobody any more (a stale socket: connect is
// refused), or a live mux master, whose pid its alive check names (what `ssh -O check`
// prints). Blocking and bounded: a master answers its hello and an alive check in well
// under a millisecond, and one that does not within the bound is reported as not answering.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tether::control {

struct MuxProbe {
  enum class Kind {
    kAbsent,  // no socket there
    kStale,   // a socket nobody accepts on
    kMaster,  // a live mux master (OpenSSH's, or another tether daemon's): `pid`
    kOther,   // something accepts but does not speak the mux protocol, or cannot be reached
  };
  Kind kind = Kind::kAbsent;
  uint32_t pid = 0;
  std::string detail;  // kOther: what happened
};

// Connects to `path`, exchanges hellos and sends one alive check, all within `timeout`.
MuxProbe ProbeMuxSocket(const std::string& path, std::chrono::milliseconds timeout);

}  // namespace tether::control
