#include "agent/api.h"

#include <cmath>

#include "common/text.h"

namespace tether::agent {
namespace {

constexpr uint64_t kMebibyte = 1024 * 1024;
constexpr double kMillisPerHour = 3600.0 * 1000.0;

template <typename T>
Json OrNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

Json MibToBytes(const std::optional<uint64_t>& mib) {
  return mib ? Json(*mib * kMebibyte) : Json(nullptr);
}

Json ProcessToJson(const GpuProcess& p) {
  return {{"pid", p.pid},           {"name", p.name},
          {"gpu_uuid", p.gpu_uuid}, {"used_memory_bytes", MibToBytes(p.used_memory_mib)},
          {"uid", OrNull(p.uid)},   {"user", p.user.empty() ? Json(nullptr) : Json(p.user)}};
}

Json GpuToJson(const Gpu& gpu) {
  Json processes = Json::array();
  for (const GpuProcess& p : gpu.processes) processes.push_back(ProcessToJson(p));
  return {{"index", gpu.index},
          {"uuid", gpu.uuid},
          {"name", gpu.name},
          {"utilization_percent", OrNull(gpu.utilization_percent)},
          {"memory_used_bytes", MibToBytes(gpu.memory_used_mib)},
          {"memory_total_bytes", MibToBytes(gpu.memory_total_mib)},
          {"temperature_celsius", OrNull(gpu.temperature_celsius)},
          {"power_watts", OrNull(gpu.power_watts)},
          {"processes", std::move(processes)}};
}

Json CpuToJson(const SystemStatus& s) {
  Json cpu = {{"count", s.cpus}};
  cpu["load1"] = s.load ? Json(s.load->load1) : Json(nullptr);
  cpu["load5"] = s.load ? Json(s.load->load5) : Json(nullptr);
  cpu["load15"] = s.load ? Json(s.load->load15) : Json(nullptr);
  cpu["running"] = s.load ? Json(s.load->running) : Json(nullptr);
  cpu["tasks"] = s.load ? Json(s.load->total) : Json(nullptr);
  return cpu;
}

Json MemoryToJson(const std::optional<MemInfo>& m) {
  if (!m) return nullptr;
  uint64_t used = m->total_bytes > m->available_bytes ? m->total_bytes - m->available_bytes : 0;
  return {{"total_bytes", m->total_bytes},
          {"available_bytes", m->available_bytes},
          {"used_bytes", used},
          {"free_bytes", m->free_bytes},
          {"swap_total_bytes", m->swap_total_bytes},
          {"swap_free_bytes", m->swap_free_bytes}};
}

Json DiskToJson(const DiskUsage& d) {
  Json j = {{"path", d.path},
            {"total_bytes", OrNull(d.total_bytes)},
            {"available_bytes", OrNull(d.available_bytes)}};
  j["used_bytes"] = d.total_bytes && d.free_bytes && *d.total_bytes >= *d.free_bytes
                        ? Json(*d.total_bytes - *d.free_bytes)
                        : Json(nullptr);
  j["error"] = d.error.empty() ? Json(nullptr) : Json(d.error);
  return j;
}

Json PortToJson(const ListeningPort& p) {
  return {{"protocol", p.ipv6 ? "tcp6" : "tcp"},
          {"address", p.address},
          {"port", p.port},
          {"uid", p.uid}};
}

Json TmuxToJson(const TmuxReport& t) {
  Json sessions = Json::array();
  for (const TmuxSession& s : t.sessions) {
    sessions.push_back({{"name", s.name},
                        {"windows", s.windows},
                        {"attached", s.attached},
                        {"created_unix", s.created_unix}});
  }
  return {{"available", t.available}, {"sessions", std::move(sessions)}};
}

}  // namespace

Json LeaseToJson(const LeaseSnapshot& lease) {
  Json j = {{"enabled", lease.enabled}, {"armed", lease.armed}};
  j["remaining_seconds"] = lease.remaining
                               ? Json(static_cast<double>(lease.remaining->count()) / 1000.0)
                               : Json(nullptr);
  j["expires_at"] = lease.expires_at ? Json(FormatUtc(*lease.expires_at)) : Json(nullptr);
  j["expirations"] = lease.expirations;
  j["command"] = lease.command.empty() ? Json(nullptr) : Json(lease.command);
  j["command_running_pid"] = OrNull(lease.running_pid);
  j["last_exit_code"] = OrNull(lease.last_exit_code);
  return j;
}

Json StatusToJson(const SystemStatus& s, std::string_view agent_version) {
  Json gpus = Json::array();
  for (const Gpu& gpu : s.gpu.gpus) gpus.push_back(GpuToJson(gpu));
  Json unmatched = Json::array();
  for (const GpuProcess& p : s.gpu.unmatched_processes) unmatched.push_back(ProcessToJson(p));
  Json disks = Json::array();
  for (const DiskUsage& d : s.disks) disks.push_back(DiskToJson(d));
  Json ports = Json::array();
  for (const ListeningPort& p : s.ports) ports.push_back(PortToJson(p));

  Json j;
  j["api"] = kApiVersion;
  j["agent"] = {{"version", agent_version}};
  j["hostname"] = s.hostname;
  j["time"] = FormatUtc(s.collected_at);
  j["uptime_seconds"] = OrNull(s.uptime_seconds);
  j["cpu"] = CpuToJson(s);
  j["memory"] = MemoryToJson(s.memory);
  j["disks"] = std::move(disks);
  j["gpu"] = {{"source", "nvidia-smi"},
              {"state", GpuStateName(s.gpu.state)},
              {"error", s.gpu.error.empty() ? Json(nullptr) : Json(s.gpu.error)}};
  j["gpus"] = std::move(gpus);
  j["gpu_processes_unmatched"] = std::move(unmatched);
  j["ports"] = std::move(ports);
  j["tmux"] = TmuxToJson(s.tmux);
  j["lease"] = LeaseToJson(s.lease);
  j["errors"] = s.errors;
  return j;
}

Json ErrorJson(std::string_view message, std::string_view hint) {
  Json j = {{"error", message}};
  if (!hint.empty()) j["hint"] = hint;
  return j;
}

std::string DumpJson(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::chrono::milliseconds> ParseExtendRequest(std::optional<std::string_view> query_hours,
                                                     std::string_view body) {
  const std::string kHint = "send {\"hours\": 2} as JSON, or POST /extend?hours=2";
  std::optional<double> hours;
  if (query_hours) {
    hours = ParseDouble(Trim(*query_hours));
    if (!hours) return MakeError("extend", "hours is not a number", kHint);
  } else {
    if (Trim(body).empty()) return MakeError("extend", "how many hours?", kHint);
    Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return MakeError("extend", "the body is not JSON", kHint);
    if (!j.is_object() || !j.contains("hours") || !j["hours"].is_number()) {
      return MakeError("extend", "the body has no number \"hours\"", kHint);
    }
    hours = j["hours"].get<double>();
  }
  if (!std::isfinite(*hours) || *hours <= 0) {
    return MakeError("extend", "hours must be a positive number", kHint);
  }
  // Bounded before the conversion so it cannot overflow; Lease also refuses an extension
  // that would take the total past its maximum.
  const auto max_hours = std::chrono::duration_cast<std::chrono::hours>(Lease::kMaxRemaining);
  if (*hours > static_cast<double>(max_hours.count())) {
    return MakeError("extend", "a lease may not run more than " +
                                   std::to_string(max_hours.count()) + " hours ahead");
  }
  auto ms = std::chrono::milliseconds(std::llround(*hours * kMillisPerHour));
  if (ms.count() <= 0) return MakeError("extend", "hours must be a positive number", kHint);
  return ms;
}

}  // namespace tether::agent
