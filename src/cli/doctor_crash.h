// `tether doctor HOST` after the daemon died without cleaning up (kill -9, a crash, the
// OOM killer): that it died, when, its log's last lines, and for every forward it ran
// (its record, daemon/forwards_record.h) or that the host's ssh_config *Forward lines and
// config.toml profile ask for, whether the local port is free or who holds it. The
// checklist's "did something take my port?" matters most then, and no daemon is there
// to ask.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/ssh_config.h"
#include "config/tether_config.h"
#include "daemon/forwards_record.h"
#include "daemon/state_dir.h"

namespace tether::cli {

// Lines of the daemon's log doctor shows after a death.
inline constexpr size_t kDeadDaemonLogLines = 10;
// How much of the log's end is read for them (the log may be 10 MiB).
inline constexpr size_t kLogTailBytes = 64u << 10;
// A log line longer than this is cut: a tail is for reading on a terminal.
inline constexpr size_t kLogLineMax = 400;

struct DeadDaemon {
  std::string host;
  pid_t pid = 0;          // 0: unknown
  int64_t started = 0;    // Unix seconds; 0: unknown (no record)
  int64_t last_seen = 0;  // Unix seconds: the record's heartbeat or the log's last write
  std::optional<daemon::ForwardsRecord> record;
  std::string record_error;  // "unreadable record ...": the file is damaged
  std::string log_path;
};

// A daemon for `alias` that is not running but left a record or a pid file; nothing when
// one runs or none was there. Call it before anything removes stale files (CollectStatus).
std::optional<DeadDaemon> FindDeadDaemon(const daemon::StateDir& state, const std::string& alias);

// One port (or socket) a forward needs, and who asks for it.
struct PortToCheck {
  std::string flag;  // "-L 8000:localhost:8000"
  std::string kind;  // "local", "remote", "dynamic", "proxy"
  bool on_server = false;
  std::string bind;  // as written
  uint16_t port = 0;
  std::string path;  // a unix socket's
  // "recorded by the daemon", "LocalForward in ssh_config", "config.toml", in that order.
  std::vector<std::string> sources;
};

// The recorded forwards, then the ssh_config lines, then the profile's, one entry for each
// place listened on (a bind address left out and "localhost" are the loopback), with every
// source that asks for it. Pure.
std::vector<PortToCheck> PortsToCheck(const std::vector<daemon::RecordedForward>& recorded,
                                      const std::vector<config::ForwardSpec>& ssh_config,
                                      const std::vector<config::ForwardSpec>& profile);

// The last `count` lines of `text`, each made safe for a terminal and for JSON (control
// bytes and bytes past ASCII shown as '?') and cut at kLogLineMax. A first line that `text` may
// have begun in the middle of is dropped when `starts_mid_line`. Pure.
std::vector<std::string> LastLines(std::string_view text, size_t count, bool starts_mid_line);

// A check, as doctor's report takes it: name, pass/warn/fail/skip, evidence, fix.
using AddCheck = std::function<void(std::string name, std::string status, std::string evidence,
                                    std::string fix)>;

// Adds the checks about the dead daemon and each port to `add`; unless `json_output`,
// prints the log's last lines under the daemon's check. Returns doctor --json's
// `dead_daemon` object.
nlohmann::json ReportDeadDaemon(const DeadDaemon& dead, const config::HostConfig& host,
                                const config::HostProfile* profile, bool json_output,
                                const AddCheck& add);

}  // namespace tether::cli
