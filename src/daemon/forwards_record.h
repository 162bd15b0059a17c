// What a host's daemon runs, kept beside its pid file as HOST.forwards, so that
// `tether doctor` can still say which ports it held after the daemon died without
// cleaning up (kill -9, a crash, the OOM killer): its pid, when it started, when it was
// last seen alive, and every forward as the user writes it.
//
// The daemon rewrites the file whenever its forwards change (atomically: a temporary file
// in the same directory, fsync, rename; 0600) and touches its mtime on a slow heartbeat,
// so the mtime says when the daemon was last alive. A clean stop removes the file; after
// an unclean death it stays until the next `up` replaces it or `down` removes it.
//
// The file is one JSON object:
//   {"version": 1, "host": "gpu", "pid": 4242, "started": 1764742834,
//    "updated": 1764742900, "forwards": [{"kind": "local", "spec": "8000:localhost:8000",
//    "flag": "-L 8000:localhost:8000", "bind": "", "port": 8000, "path": "",
//    "target": "localhost:8000"}]}
// Times are Unix seconds. Reading it trusts nothing: a truncated, oversized or hostile file
// is an error that says why, never a crash.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tether::daemon {

inline constexpr int kForwardsRecordVersion = 1;
// A record past this is not read: a few hundred forwards take a few tens of KiB.
inline constexpr size_t kMaxForwardsRecordBytes = 1u << 20;
// More forwards than this in a record is damage, not a daemon's list.
inline constexpr size_t kMaxRecordedForwards = 4096;
// How often the daemon touches its record: "last seen" is at most this old at a death.
// One utimensat a minute; the file's content is rewritten only when forwards change.
inline constexpr std::chrono::seconds kForwardsRecordHeartbeat{60};

struct RecordedForward {
  std::string kind;    // "local", "remote", "dynamic" or "proxy" (as `status` says)
  std::string spec;    // as written after -L/-R/-D: "8000:localhost:8000"
  std::string flag;    // "-L 8000:localhost:8000"
  std::string bind;    // the listen address as given ("" = loopback); -R: on the server
  uint16_t port = 0;   // the listen port; 0 for a unix socket
  std::string path;    // the listen socket's path, for a unix socket
  std::string target;  // where connections go, as `status` says it
  bool operator==(const RecordedForward&) const = default;
};

struct ForwardsRecord {
  std::string host;
  pid_t pid = 0;
  int64_t started = 0;  // Unix seconds
  int64_t updated = 0;  // Unix seconds: the last rewrite (ReadForwardsRecord: or heartbeat)
  std::vector<RecordedForward> forwards;
  bool operator==(const ForwardsRecord&) const = default;
};

// The file's text.
std::string FormatForwardsRecord(const ForwardsRecord& record);
// Parses a record's text. Errors say what is wrong ("not JSON", "pid is not a number",
// "forward 3: port out of range"). Pure.
Result<ForwardsRecord> ParseForwardsRecord(std::string_view text);

// Writes `record` at `path` atomically, mode 0600: readers see the old file or the new
// one, whole, never a mix.
Status WriteForwardsRecord(const std::string& path, const ForwardsRecord& record);
// Reads the record at `path`: nullopt when there is none; an error that starts with
// "unreadable record" when the file is damaged, not a regular file, or too large. Its
// `updated` is the later of the text's and the file's mtime (the heartbeat).
Result<std::optional<ForwardsRecord>> ReadForwardsRecord(const std::string& path);

// One daemon's record: written when its forwards change, touched on a heartbeat, removed
// at a clean stop. Nothing it does can stop the daemon: a failed write is logged once.
// Loop thread.
class ForwardsRecorder {
 public:
  ForwardsRecorder(std::string path, std::string host) : path_(std::move(path)) {
    record_.host = std::move(host);
  }
  // The daemon runs as `pid` from `started` on; writes the record with `forwards`.
  void Start(pid_t pid, std::chrono::system_clock::time_point started,
             std::vector<RecordedForward> forwards);
  // Its forwards now (after an add or a cancel); rewrites the record. Nothing before Start.
  void Update(std::vector<RecordedForward> forwards);
  // Touches the record when a heartbeat is due.
  void Tick(std::chrono::steady_clock::time_point now);
  // A clean stop: the record goes. Nothing more is written after it.
  void Remove();
  bool started() const { return started_; }

 private:
  void Write();

  std::string path_;
  ForwardsRecord record_;
  bool started_ = false;
  bool warned_ = false;
  std::chrono::steady_clock::time_point last_touch_{};
};

}  // namespace tether::daemon
