#include "daemon/forwards_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/unique_fd.h"

namespace tether::daemon {
namespace {

using nlohmann::json;

// A string in a record longer than this is damage: paths and specs are a few hundred bytes.
constexpr size_t kMaxRecordString = 4096;

const char* const kKinds[] = {"local", "remote", "dynamic", "proxy"};

// What is wrong with a record's text; the callers say "unreadable record" and where.
Error Unreadable(const std::string& why) { return MakeError("state", why); }

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// The integer at `key` when it is one within [lo, hi]; nlohmann's own getters would
// throw on a wrong type or wrap a large unsigned value.
std::optional<int64_t> IntAt(const json& object, const char* key, int64_t lo, int64_t hi) {
  auto it = object.find(key);
  if (it == object.end()) return std::nullopt;
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    v = static_cast<int64_t>(u);
  } else if (it->is_number_integer()) {
    v = it->get<int64_t>();
  } else {
    return std::nullopt;
  }
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

// The string at `key` ("" when absent); false when it is there but not a bounded string.
bool StringAt(const json& object, const char* key, std::string* out) {
  auto it = object.find(key);
  if (it == object.end()) {
    out->clear();
    return true;
  }
  if (!it->is_string()) return false;
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > kMaxRecordString) return false;
  *out = s;
  return true;
}

Result<RecordedForward> ParseForward(const json& j, size_t index) {
  const std::string where = "forward " + std::to_string(index + 1) + ": ";
  if (!j.is_object()) return Unreadable(where + "not an object");
  RecordedForward f;
  for (auto [key, field] :
       {std::pair{"kind", &f.kind}, std::pair{"spec", &f.spec}, std::pair{"flag", &f.flag},
        std::pair{"bind", &f.bind}, std::pair{"path", &f.path}, std::pair{"target", &f.target}}) {
    if (!StringAt(j, key, field)) return Unreadable(where + key + " is not a string");
  }
  bool known = false;
  for (const char* k : kKinds) known = known || f.kind == k;
  if (!known) return Unreadable(where + "unknown kind");
  if (f.spec.empty()) return Unreadable(where + "no spec");
  if (j.contains("port")) {
    auto port = IntAt(j, "port", 0, 65535);
    if (!port) return Unreadable(where + "port out of range");
    f.port = static_cast<uint16_t>(*port);
  }
  if (f.port == 0 && f.path.empty()) return Unreadable(where + "neither a port nor a path");
  return f;
}

}  // namespace

std::string FormatForwardsRecord(const ForwardsRecord& record) {
  json forwards = json::array();
  for (const auto& f : record.forwards) {
    forwards.push_back({{"kind", f.kind},
                        {"spec", f.spec},
                        {"flag", f.flag},
                        {"bind", f.bind},
                        {"port", f.port},
                        {"path", f.path},
                        {"target", f.target}});
  }
  json j = {
      {"version", kForwardsRecordVersion}, {"host", record.host},       {"pid", record.pid},
      {"started", record.started},         {"updated", record.updated}, {"forwards", forwards}};
  // A path or host that is not UTF-8 is written with replacement characters rather than
  // making dump() throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

namespace {

Result<ForwardsRecord> ParseRecord(std::string_view text) {
  if (text.size() > kMaxForwardsRecordBytes) return Unreadable("larger than 1 MiB");
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Unreadable("not JSON (truncated?)");
  if (!j.is_object()) return Unreadable("not a JSON object");
  auto version = IntAt(j, "version", 0, std::numeric_limits<int32_t>::max());
  if (!version) return Unreadable("no version");
  if (*version != kForwardsRecordVersion) {
    return Unreadable("version " + std::to_string(*version) + ", this tether reads " +
                      std::to_string(kForwardsRecordVersion));
  }
  ForwardsRecord record;
  if (!StringAt(j, "host", &record.host)) return Unreadable("host is not a string");
  auto pid = IntAt(j, "pid", 1, std::numeric_limits<pid_t>::max());
  if (!pid) return Unreadable("pid missing or not a process id");
  record.pid = static_cast<pid_t>(*pid);
  // Up to the year 9999: a time past that is damage.
  constexpr int64_t kLatest = 253402300799;
  auto started = IntAt(j, "started", 0, kLatest);
  auto updated = IntAt(j, "updated", 0, kLatest);
  if (!started || !updated) return Unreadable("started or updated is not a time");
  record.started = *started;
  record.updated = *updated;
  auto forwards = j.find("forwards");
  if (forwards == j.end() || !forwards->is_array()) return Unreadable("no list of forwards");
  if (forwards->size() > kMaxRecordedForwards) return Unreadable("too many forwards");
  for (size_t i = 0; i < forwards->size(); ++i) {
    auto f = ParseForward((*forwards)[i], i);
    if (!f.ok()) return f.take_error();
    record.forwards.push_back(std::move(*f));
  }
  return record;
}

}  // namespace

Result<ForwardsRecord> ParseForwardsRecord(std::string_view text) {
  auto record = ParseRecord(text);
  if (!record.ok()) return MakeError("state", "unreadable record: " + record.error().message);
  return record;
}

Status WriteForwardsRecord(const std::string& path, const ForwardsRecord& record) {
  std::string failed;
  if (int err = WriteFileAtomically(path, FormatForwardsRecord(record), 0600, &failed)) {
    return ErrnoError("state", "cannot write " + failed, err);
  }
  return Status::Ok();
}

Result<std::optional<ForwardsRecord>> ReadForwardsRecord(const std::string& path) {
  // O_NONBLOCK: a FIFO put there must not hang the reader; O_NOFOLLOW: nor a link lead
  // it elsewhere.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) {
    if (errno == ENOENT) return std::optional<ForwardsRecord>();
    return MakeError("state", "unreadable record " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return MakeError("state", "unreadable record " + path + ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxForwardsRecordBytes) {
    return MakeError("state", "unreadable record " + path + ": larger than 1 MiB");
  }
  std::string text;
  char buf[8192];
  // Bounded by the size cap.
  while (text.size() <= kMaxForwardsRecordBytes) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return MakeError("state", "unreadable record " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  auto record = ParseRecord(text);
  if (!record.ok()) {
    return MakeError("state", "unreadable record " + path + ": " + record.error().message);
  }
  record->updated = std::max<int64_t>(record->updated, st.st_mtime);
  return std::optional<ForwardsRecord>(std::move(*record));
}

void ForwardsRecorder::Start(pid_t pid, std::chrono::system_clock::time_point started,
                             std::vector<RecordedForward> forwards) {
  record_.pid = pid;
  record_.started = UnixSeconds(started);
  started_ = true;
  Update(std::move(forwards));
}

void ForwardsRecorder::Update(std::vector<RecordedForward> forwards) {
  if (!started_) return;
  record_.forwards = std::move(forwards);
  Write();
}

void ForwardsRecorder::Tick(std::chrono::steady_clock::time_point now) {
  if (!started_ || now - last_touch_ < kForwardsRecordHeartbeat) return;
  last_touch_ = now;
  // The mtime is the heartbeat: no rewrite, no fsync.
  if (::utimensat(AT_FDCWD, path_.c_str(), nullptr, 0) != 0 && errno == ENOENT) Write();
}

void ForwardsRecorder::Remove() {
  if (!started_) return;
  started_ = false;
  ::unlink(path_.c_str());
}

void ForwardsRecorder::Write() {
  record_.updated = UnixSeconds(std::chrono::system_clock::now());
  last_touch_ = std::chrono::steady_clock::now();
  Status s = WriteForwardsRecord(path_, record_);
  if (!s.ok() && !warned_) {
    warned_ = true;
    spdlog::warn("[{}] cannot keep the forwards record (doctor uses it after a crash): {}",
                 record_.host, s.error().ToString());
  }
  if (s.ok()) warned_ = false;
}

}  // namespace tether::daemon
