#include "cli/doctor_crash.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "cli/format.h"
#include "cli/port_owner.h"
#include "common/unique_fd.h"
#include "forward/forward.h"

namespace tether::cli {
namespace {

using nlohmann::json;

constexpr const char* kRecorded = "recorded by the daemon";

// Where a forward listens, for matching: an empty bind address and "localhost" are the
// loopback, as ssh and the daemon treat them.
std::string NormalBind(const std::string& bind) {
  return bind.empty() || bind == "localhost" ? "127.0.0.1" : bind;
}

bool SamePlace(const PortToCheck& a, const PortToCheck& b) {
  if (a.on_server != b.on_server || a.path != b.path) return false;
  return !a.path.empty() || (a.port == b.port && NormalBind(a.bind) == NormalBind(b.bind));
}

const char* ConfigKeyword(config::ForwardKind kind) {
  switch (kind) {
    case config::ForwardKind::kLocal:
      return "LocalForward";
    case config::ForwardKind::kRemote:
      return "RemoteForward";
    case config::ForwardKind::kDynamic:
      return "DynamicForward";
  }
  return "Forward";
}

PortToCheck FromSpec(const config::ForwardSpec& spec) {
  PortToCheck p;
  p.flag = spec.ToFlagString();
  p.kind = forward::ForwardKindName(spec.kind);
  p.on_server = spec.kind == config::ForwardKind::kRemote;
  p.bind = spec.listen.host;
  p.port = spec.listen.port;
  p.path = spec.listen.path;
  return p;
}

void AddPlace(std::vector<PortToCheck>& out, PortToCheck p, const std::string& source) {
  for (auto& have : out) {
    if (!SamePlace(have, p)) continue;
    if (std::find(have.sources.begin(), have.sources.end(), source) == have.sources.end()) {
      have.sources.push_back(source);
    }
    return;
  }
  p.sources = {source};
  out.push_back(std::move(p));
}

std::string Joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

// "2026-12-03 06:20:34" in local time, as the log writes it; "unknown" for 0.
std::string LocalTime(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "unknown";
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (::localtime_r(&t, &tm) == nullptr) return "unknown";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The end of the file at `path`, at most kLogTailBytes; *whole says whether it is all of it.
std::optional<std::string> ReadTail(const std::string& path, bool* whole) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return std::nullopt;
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  off_t from = st.st_size > static_cast<off_t>(kLogTailBytes)
                   ? st.st_size - static_cast<off_t>(kLogTailBytes)
                   : 0;
  *whole = from == 0;
  std::string text(kLogTailBytes, '\0');
  size_t got = 0;
  // Bounded by the buffer's size.
  while (got < text.size()) {
    ssize_t n =
        ::pread(fd.get(), text.data() + got, text.size() - got, from + static_cast<off_t>(got));
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return text;
}

// `text` safe for a terminal and for JSON: control bytes and anything past ASCII (which
// could be half a character, or not UTF-8 at all) become '?'.
std::string Printable(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u >= 0x7f) c = '?';
  }
  return out;
}

std::string Holders(const std::vector<PortOwner>& owners) {
  std::string out;
  for (const auto& o : owners) {
    out += (out.empty() ? "" : "; ") +
           (o.pid != 0 ? "pid " + std::to_string(o.pid) + " (" + Printable(o.command) + ")"
                       : std::string("a process we cannot see (another account's)"));
  }
  return out;
}

}  // namespace

std::optional<DeadDaemon> FindDeadDaemon(const daemon::StateDir& state, const std::string& alias) {
  const std::string name = daemon::FileNameFor(alias);
  daemon::LiveCheck live = daemon::CheckRunning(state.PidPath(name));
  if (live.running) return std::nullopt;
  auto record = daemon::ReadForwardsRecord(state.ForwardsPath(name));
  struct stat st {};
  const bool pid_file = ::stat(state.PidPath(name).c_str(), &st) == 0;
  if (record.ok() && !record->has_value() && !pid_file) return std::nullopt;
  DeadDaemon dead;
  dead.host = alias;
  dead.log_path = state.LogPath(name);
  if (!record.ok()) {
    dead.record_error = record.error().message;
  } else if (record->has_value()) {
    dead.record = **record;
    dead.pid = dead.record->pid;
    dead.started = dead.record->started;
    dead.last_seen = dead.record->updated;
  }
  if (dead.pid == 0) dead.pid = live.pid;
  if (::stat(dead.log_path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    dead.last_seen = std::max<int64_t>(dead.last_seen, st.st_mtime);
  }
  return dead;
}

std::vector<PortToCheck> PortsToCheck(const std::vector<daemon::RecordedForward>& recorded,
                                      const std::vector<config::ForwardSpec>& ssh_config,
                                      const std::vector<config::ForwardSpec>& profile) {
  std::vector<PortToCheck> out;
  for (const auto& r : recorded) {
    PortToCheck p;
    p.flag = r.flag.empty() ? r.spec : r.flag;
    p.kind = r.kind;
    p.on_server = r.kind == "remote" || r.kind == "proxy";
    p.bind = r.bind;
    p.port = r.port;
    p.path = r.path;
    AddPlace(out, std::move(p), kRecorded);
  }
  for (const auto& spec : ssh_config) {
    AddPlace(out, FromSpec(spec), std::string(ConfigKeyword(spec.kind)) + " in ssh_config");
  }
  for (const auto& spec : profile) AddPlace(out, FromSpec(spec), "config.toml");
  return out;
}

std::vector<std::string> LastLines(std::string_view text, size_t count, bool starts_mid_line) {
  if (starts_mid_line) {
    size_t eol = text.find('\n');
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  }
  std::vector<std::string_view> lines;
  size_t pos = 0;
  // Bounded by the text's size.
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    lines.push_back(text.substr(pos, eol - pos));
    pos = eol + 1;
  }
  size_t first = lines.size() > count ? lines.size() - count : 0;
  std::vector<std::string> out;
  for (size_t i = first; i < lines.size(); ++i) {
    std::string line = Printable(lines[i].substr(0, kLogLineMax));
    if (lines[i].size() > kLogLineMax) line += "...";
    out.push_back(std::move(line));
  }
  return out;
}

json ReportDeadDaemon(const DeadDaemon& dead, const config::HostConfig& host,
                      const config::HostProfile* profile, bool json_output, const AddCheck& add) {
  const std::string& alias = dead.host;
  std::string when = "pid " + (dead.pid != 0 ? std::to_string(dead.pid) : "unknown") +
                     ", started " + LocalTime(dead.started) + ", last seen " +
                     LocalTime(dead.last_seen);
  if (dead.last_seen > 0 && Now() >= dead.last_seen) {
    when += " (" + HumanDuration(Now() - dead.last_seen) + " ago)";
  }
  add("daemon", "fail", "the daemon for " + alias + " died (" + when + ")",
      "its log tells why (`tether logs " + alias + "`); `tether up " + alias +
          "` starts a new one");

  bool whole = true;
  auto tail = ReadTail(dead.log_path, &whole);
  std::vector<std::string> lines;
  if (tail) lines = LastLines(*tail, kDeadDaemonLogLines, !whole);
  if (!json_output) {
    if (!tail) {
      std::printf("      no log at %s\n", dead.log_path.c_str());
    } else {
      std::printf("      the log's last %zu line(s) (%s):\n", lines.size(), dead.log_path.c_str());
      for (const auto& l : lines) std::printf("        %s\n", l.c_str());
    }
    std::fflush(stdout);
  }
  if (!dead.record_error.empty()) {
    add("forwards record", "warn", dead.record_error,
        "the ports below come from the configuration alone; `tether up " + alias +
            "` writes a new record");
  }

  std::vector<daemon::RecordedForward> recorded;
  if (dead.record) recorded = dead.record->forwards;
  json forwards = json::array();
  for (const auto& p :
       PortsToCheck(recorded, host.forwards,
                    profile ? profile->forwards : std::vector<config::ForwardSpec>{})) {
    const std::string sources = Joined(p.sources);
    json entry = {{"forward", p.flag},       {"kind", p.kind}, {"sources", p.sources},
                  {"port", p.port},          {"path", p.path}, {"holder", ""},
                  {"holders", json::array()}};
    if (p.on_server) {
      entry["state"] = "on the server";
      add("server port " + std::to_string(p.port) + " (" + p.flag + ")", "skip",
          "listens on the server, checked there once a daemon runs (" + sources + ")", "");
    } else if (!p.path.empty()) {
      entry["state"] = "unix socket";
      add("socket " + p.path + " (" + p.flag + ")", "skip",
          "a unix socket; `tether up` replaces a stale one (" + sources + ")", "");
    } else {
      const std::string name = "port " + std::to_string(p.port) + " (" + p.flag + ")";
      std::vector<PortOwner> owners = FindPortOwners(p.port);
      if (owners.empty()) {
        entry["state"] = "free";
        add(name, "pass",
            "free: `tether up " + alias + "` can listen there again (" + sources + ")", "");
      } else {
        const std::string holder = Holders(owners);
        entry["state"] = "held";
        entry["holder"] = holder;
        for (const auto& o : owners)
          entry["holders"].push_back({{"pid", o.pid}, {"command", Printable(o.command)}});
        std::string fix = "stop it";
        if (owners.front().pid != 0) fix += " (kill " + std::to_string(owners.front().pid) + ")";
        fix += " or forward another port, then `tether up " + alias + "`";
        add(name, "fail",
            "held by " + holder + ": `tether up " + alias + "` cannot listen there (" + sources +
                ")",
            fix);
      }
    }
    forwards.push_back(std::move(entry));
  }

  json out = {{"pid", dead.pid},
              {"started", dead.started > 0 ? json(dead.started) : json()},
              {"last_seen", dead.last_seen > 0 ? json(dead.last_seen) : json()},
              {"record", dead.record                 ? "ok"
                         : dead.record_error.empty() ? "none"
                                                     : dead.record_error},
              {"log", dead.log_path},
              {"log_tail", lines},
              {"forwards", forwards}};
  return out;
}

}  // namespace tether::cli
