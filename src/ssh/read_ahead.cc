// What every platform shares: the mode's words, the switch, and the process's verdict.
#include "ssh/read_ahead.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>

namespace tether::ssh {

std::string_view ToString(ReadAheadMode mode) {
  switch (mode) {
    case ReadAheadMode::kActive:
      return "active";
    case ReadAheadMode::kOff:
      return "off";
    case ReadAheadMode::kNotIntercepted:
      return "not intercepted";
  }
  return "off";
}

bool ReadAheadSwitchedOff(const char* value) {
  if (value == nullptr) return false;
  const std::string_view v(value);
  return v == "0" || v == "off" || v == "no" || v == "false";
}

ReadAheadMode ReadAheadStatus() {
  const char* value = std::getenv(kReadAheadSwitch);
  if (ReadAheadSwitchedOff(value)) {
    static std::once_flag logged;
    std::call_once(logged, [value] {
      spdlog::info("read-ahead: off ({}={}): libssh reads its socket {} bytes at a time",
                   kReadAheadSwitch, value, kLibsshReadSize);
    });
    return ReadAheadMode::kOff;
  }
  static const ReadAheadVerdict verdict = [] {
    ReadAheadVerdict v = ReadAhead::CheckLibssh();
    if (v.mode == ReadAheadMode::kActive && v.largest_read == kLibsshReadSize) {
      spdlog::info("read-ahead: {} ({})", ToString(v.mode), v.detail);
    } else {
      spdlog::warn("read-ahead: {} ({})", ToString(v.mode), v.detail);
    }
    return v;
  }();
  return verdict.mode;
}

}  // namespace tether::ssh
