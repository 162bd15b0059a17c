#include "agent/collector.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <tuple>
#include <type_traits>

#include "agent/command.h"
#include "common/text.h"
#include "common/unique_fd.h"

namespace tether::agent {
namespace {

using std::chrono::milliseconds;

// /proc/net/tcp on a busy server is one line per socket; 8 MiB is ~50 000 sockets, and a
// cap keeps one read from taking the agent's memory with it.
constexpr size_t kMaxProcFileBytes = 8 * 1024 * 1024;
// nvidia-smi output for 16 GPUs and a few hundred processes is a few tens of KiB.
constexpr size_t kMaxCommandOutput = 1024 * 1024;

Result<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("read", "cannot open " + path, errno);
  std::string data;
  char buf[16 * 1024];
  while (data.size() < kMaxProcFileBytes) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read", "cannot read " + path, errno);
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

// Reads proc_root/name and parses it; on failure records the reason and returns nullopt.
template <typename Parse>
auto ReadParsed(const std::string& proc_root, const std::string& name, Parse parse,
                std::vector<std::string>& errors)
    -> std::optional<std::decay_t<decltype(*parse(std::string_view()))>> {
  auto text = ReadFile(proc_root + "/" + name);
  if (!text) {
    errors.push_back(name + ": " + text.error().ToString());
    return std::nullopt;
  }
  auto parsed = parse(*text);
  if (!parsed) {
    errors.push_back(name + ": " + parsed.error().ToString());
    return std::nullopt;
  }
  return std::move(*parsed);
}

DiskUsage StatDisk(const std::string& path) {
  DiskUsage d;
  d.path = path;
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    d.error = std::strerror(errno);
    return d;
  }
  const uint64_t unit = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
  d.total_bytes = static_cast<uint64_t>(st.f_blocks) * unit;
  d.free_bytes = static_cast<uint64_t>(st.f_bfree) * unit;
  d.available_bytes = static_cast<uint64_t>(st.f_bavail) * unit;
  return d;
}

// Whose each GPU process is: its real uid from proc_root/PID/status and that uid's name.
// A pid that is not ours to see (another PID namespace) or that ended meanwhile keeps
// no owner; that is no error, the GPU figures stand.
void NameOwners(const CollectorConfig& config, GpuReport& report) {
  std::optional<std::string> passwd;
  auto name = [&](GpuProcess& p) {
    auto status = ReadFile(config.proc_root + "/" + std::to_string(p.pid) + "/status");
    if (!status) return;
    auto uid = ParseStatusUid(*status);
    if (!uid) return;
    p.uid = *uid;
    if (!passwd) {
      auto text = ReadFile(config.passwd_file);
      passwd = text ? std::move(*text) : std::string();
    }
    // /etc/passwd read as a file: a static binary asks no NSS service (CMakeLists.txt), so
    // an account only LDAP or SSSD knows has no name here, and is shown by its uid.
    if (auto entry =
            *uid >= 0 ? FindPasswdEntry(*passwd, static_cast<uint64_t>(*uid)) : std::nullopt)
      p.user = entry->name;
  };
  for (Gpu& gpu : report.gpus) {
    for (GpuProcess& p : gpu.processes) name(p);
  }
  for (GpuProcess& p : report.unmatched_processes) name(p);
}

NvidiaSmiRun ToRun(const CommandOutput& out) { return {out.exit_code, out.out, out.err}; }

}  // namespace

Collector::Collector(CollectorConfig config) : config_(std::move(config)) {}

GpuReport Collector::QueryGpus() {
  std::lock_guard lock(gpu_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (gpu_cache_valid_ && now - gpu_cached_at_ < gpu_cache_for_) return gpu_cache_;

  GpuReport report;
  auto gpus =
      RunCommand({config_.nvidia_smi, std::string(kGpuQueryArg), std::string(kCsvFormatArg)},
                 config_.gpu_timeout, kMaxCommandOutput);
  bool timed_out = false;
  if (!gpus) {
    if (gpus.error().sys_errno == ENOENT) {
      report.state = GpuState::kAbsent;  // not a GPU server: nothing to say
    } else {
      report.state = GpuState::kError;
      report.error = gpus.error().ToString();
    }
  } else if (gpus->timed_out) {
    timed_out = true;
    report.state = GpuState::kError;
    report.error = "nvidia-smi did not answer within " +
                   std::to_string(config_.gpu_timeout.count()) + " ms (a hung driver?)";
  } else {
    CommandOutput apps_out;
    if (gpus->exit_code == 0) {
      auto apps = RunCommand(
          {config_.nvidia_smi, std::string(kComputeAppsQueryArg), std::string(kCsvFormatArg)},
          config_.gpu_timeout, kMaxCommandOutput);
      if (apps && !apps->timed_out) {
        apps_out = std::move(*apps);
      } else {
        apps_out.exit_code = 1;
        apps_out.err = apps ? "nvidia-smi did not answer in time" : apps.error().ToString();
      }
    }
    report = InterpretNvidiaSmi(ToRun(*gpus), ToRun(apps_out));
    NameOwners(config_, report);
  }

  gpu_cache_ = report;
  gpu_cached_at_ = std::chrono::steady_clock::now();
  gpu_cache_valid_ = true;
  gpu_cache_for_ = timed_out ? config_.gpu_retry_after_timeout : config_.gpu_cache_ttl;
  return report;
}

SystemStatus Collector::Collect() {
  SystemStatus s;
  s.collected_at = std::chrono::system_clock::now();
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) s.hostname = host;
  s.cpus = static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));

  const std::string& root = config_.proc_root;
  s.uptime_seconds = ReadParsed(root, "uptime", ParseUptime, s.errors);
  s.load = ReadParsed(root, "loadavg", ParseLoadAvg, s.errors);
  s.memory = ReadParsed(root, "meminfo", ParseMemInfo, s.errors);

  for (bool v6 : {false, true}) {
    auto parse = [v6](std::string_view text) { return ParseProcNetTcp(text, v6); };
    auto ports = ReadParsed(root, v6 ? "net/tcp6" : "net/tcp", parse, s.errors);
    if (ports) s.ports.insert(s.ports.end(), ports->begin(), ports->end());
  }
  // One socket per SO_REUSEPORT worker would repeat a port; one row each is enough.
  std::sort(s.ports.begin(), s.ports.end(), [](const ListeningPort& a, const ListeningPort& b) {
    return std::tie(a.port, a.ipv6, a.address, a.uid) < std::tie(b.port, b.ipv6, b.address, b.uid);
  });
  s.ports.erase(std::unique(s.ports.begin(), s.ports.end()), s.ports.end());

  for (const std::string& path : config_.disk_paths) s.disks.push_back(StatDisk(path));

  s.gpu = QueryGpus();

  auto tmux = RunCommand({config_.tmux, "ls", "-F", std::string(kTmuxFormat)}, config_.tmux_timeout,
                         kMaxCommandOutput);
  if (tmux) {
    s.tmux.available = true;
    if (tmux->exit_code == 0) {
      auto sessions = ParseTmuxSessions(tmux->out);
      if (sessions) {
        s.tmux.sessions = std::move(*sessions);
      } else {
        s.errors.push_back("tmux: " + sessions.error().ToString());
      }
    } else if (!IsTmuxNoServer(tmux->err)) {
      s.errors.push_back("tmux: " +
                         std::string(tmux->timed_out ? "timed out" : FirstLine(tmux->err)));
    }
  } else if (tmux.error().sys_errno != ENOENT) {
    s.errors.push_back("tmux: " + tmux.error().ToString());
  }
  return s;
}

}  // namespace tether::agent
