#include "agent/nvidia_smi.h"

#include <cmath>
#include <type_traits>
#include <unordered_map>

#include "common/text.h"

namespace tether::agent {
namespace {

constexpr int kGpuLeadingFields = 2;   // index, uuid
constexpr int kGpuTrailingFields = 5;  // utilization, memory used/total, temperature, power
constexpr int kAppLeadingFields = 2;   // gpu_uuid, pid
constexpr int kAppTrailingFields = 1;  // used_memory

constexpr double kMaxValue = 1e15;

// The text nvidia-smi prints, with exit status 6, when the driver sees no GPU.
constexpr std::string_view kNoDevices = "No devices were found";
constexpr std::string_view kNoProcesses = "No running processes found";

// A CSV line split into leading fields, the free-text middle (a name, which may hold
// commas) and trailing fields.
struct Fields {
  std::vector<std::string_view> lead;
  std::string_view middle;
  std::vector<std::string_view> trail;
};

std::optional<Fields> SplitCsvLine(std::string_view line, int lead_count, int trail_count) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    parts.push_back(line.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  const size_t fixed = static_cast<size_t>(lead_count + trail_count);
  if (parts.size() < fixed + 1) return std::nullopt;
  Fields f;
  for (int i = 0; i < lead_count; ++i) f.lead.push_back(Trim(parts[i]));
  for (size_t i = parts.size() - trail_count; i < parts.size(); ++i) {
    f.trail.push_back(Trim(parts[i]));
  }
  // The middle spans from the first middle part to the last, commas included.
  const char* middle_begin = parts[lead_count].data();
  std::string_view last = parts[parts.size() - trail_count - 1];
  const char* middle_end = last.data() + last.size();
  f.middle = Trim(std::string_view(middle_begin, static_cast<size_t>(middle_end - middle_begin)));
  return f;
}

// "[N/A]", "[Not Supported]", "[GPU is lost]", "N/A": nvidia-smi's ways to say "no value".
bool IsMissing(std::string_view v) {
  return v == "N/A" || (v.size() >= 2 && v.front() == '[' && v.back() == ']');
}

// A value that is either missing (ok, nullopt) or a number; anything else is an error.
template <typename T>
Result<std::optional<T>> OptionalNumber(std::string_view v, std::string_view what) {
  if (IsMissing(v)) return std::optional<T>();
  auto d = ParseDouble(v);
  // Bounded so the conversion below is defined; no GPU has a petabyte or a petawatt.
  if (!d || *d < 0 || *d > kMaxValue) {
    return MakeError("nvidia-smi",
                     std::string(what) + " is not a number: '" + std::string(v) + "'");
  }
  if constexpr (std::is_integral_v<T>) {
    return std::optional<T>(static_cast<T>(std::llround(*d)));
  } else {
    return std::optional<T>(static_cast<T>(*d));
  }
}

Error LineError(size_t line_no, const Error& e) {
  return MakeError("nvidia-smi", "line " + std::to_string(line_no) + ": " + e.message);
}

Result<Gpu> ParseGpuLine(std::string_view line) {
  auto f = SplitCsvLine(line, kGpuLeadingFields, kGpuTrailingFields);
  if (!f) return MakeError("nvidia-smi", "expected 8 comma-separated fields");
  Gpu gpu;
  auto index = ParseInt(f->lead[0]);
  if (!index || *index < 0 || *index > 4096) {
    return MakeError("nvidia-smi", "bad GPU index '" + std::string(f->lead[0]) + "'");
  }
  gpu.index = static_cast<int>(*index);
  gpu.uuid = std::string(f->lead[1]);
  gpu.name = std::string(f->middle);
  if (gpu.name.empty()) return MakeError("nvidia-smi", "empty GPU name");

  auto util = OptionalNumber<double>(f->trail[0], "utilization.gpu");
  if (!util) return util.take_error();
  auto used = OptionalNumber<uint64_t>(f->trail[1], "memory.used");
  if (!used) return used.take_error();
  auto total = OptionalNumber<uint64_t>(f->trail[2], "memory.total");
  if (!total) return total.take_error();
  auto temp = OptionalNumber<double>(f->trail[3], "temperature.gpu");
  if (!temp) return temp.take_error();
  auto power = OptionalNumber<double>(f->trail[4], "power.draw");
  if (!power) return power.take_error();
  gpu.utilization_percent = *util;
  gpu.memory_used_mib = *used;
  gpu.memory_total_mib = *total;
  gpu.temperature_celsius = *temp;
  gpu.power_watts = *power;
  return gpu;
}

Result<GpuProcess> ParseAppLine(std::string_view line) {
  auto f = SplitCsvLine(line, kAppLeadingFields, kAppTrailingFields);
  if (!f) return MakeError("nvidia-smi", "expected 4 comma-separated fields");
  GpuProcess p;
  p.gpu_uuid = std::string(f->lead[0]);
  auto pid = ParseInt(f->lead[1]);
  if (!pid || *pid <= 0) {
    return MakeError("nvidia-smi", "bad pid '" + std::string(f->lead[1]) + "'");
  }
  p.pid = *pid;
  p.name = std::string(f->middle);
  auto mem = OptionalNumber<uint64_t>(f->trail[0], "used_memory");
  if (!mem) return mem.take_error();
  p.used_memory_mib = *mem;
  return p;
}

bool Mentions(const NvidiaSmiRun& run, std::string_view text) {
  return run.out.find(text) != std::string::npos || run.err.find(text) != std::string::npos;
}

// nvidia-smi's own words for a failure: the first line of its output, else of stderr.
std::string DescribeFailure(const NvidiaSmiRun& run) {
  std::string_view line = FirstLine(run.out);
  if (line.empty()) line = FirstLine(run.err);
  std::string message = line.empty() ? "nvidia-smi failed without a message" : std::string(line);
  if (run.exit_code != 0) message += " (exit status " + std::to_string(run.exit_code) + ")";
  return message;
}

}  // namespace

std::string_view GpuStateName(GpuState state) {
  switch (state) {
    case GpuState::kOk:
      return "ok";
    case GpuState::kNoDevices:
      return "no_devices";
    case GpuState::kAbsent:
      return "absent";
    case GpuState::kError:
      return "error";
  }
  return "error";
}

Result<std::vector<Gpu>> ParseGpuQuery(std::string_view csv) {
  std::vector<Gpu> gpus;
  size_t line_no = 0;
  for (std::string_view line : SplitLines(csv)) {
    ++line_no;
    if (Trim(line).empty()) continue;
    auto gpu = ParseGpuLine(line);
    if (!gpu) return LineError(line_no, gpu.error());
    gpus.push_back(std::move(*gpu));
  }
  return gpus;
}

Result<std::vector<GpuProcess>> ParseComputeApps(std::string_view csv) {
  std::vector<GpuProcess> processes;
  size_t line_no = 0;
  for (std::string_view line : SplitLines(csv)) {
    ++line_no;
    std::string_view trimmed = Trim(line);
    if (trimmed.empty() || trimmed == kNoProcesses) continue;
    auto process = ParseAppLine(line);
    if (!process) return LineError(line_no, process.error());
    processes.push_back(std::move(*process));
  }
  return processes;
}

GpuReport InterpretNvidiaSmi(const NvidiaSmiRun& gpu_query, const NvidiaSmiRun& apps_query) {
  GpuReport report;
  if (Mentions(gpu_query, kNoDevices)) {
    report.state = GpuState::kNoDevices;
    return report;
  }
  if (gpu_query.exit_code != 0) {
    report.state = GpuState::kError;
    report.error = DescribeFailure(gpu_query);
    return report;
  }
  auto gpus = ParseGpuQuery(gpu_query.out);
  if (!gpus) {
    report.state = GpuState::kError;
    report.error = gpus.error().ToString();
    return report;
  }
  if (gpus->empty()) {
    report.state = GpuState::kNoDevices;
    return report;
  }
  report.state = GpuState::kOk;
  report.gpus = std::move(*gpus);

  if (apps_query.exit_code != 0) {
    report.error = "process list: " + DescribeFailure(apps_query);
    return report;
  }
  auto processes = ParseComputeApps(apps_query.out);
  if (!processes) {
    report.error = "process list: " + processes.error().ToString();
    return report;
  }
  std::unordered_map<std::string, Gpu*> by_uuid;
  for (Gpu& gpu : report.gpus) by_uuid.emplace(gpu.uuid, &gpu);
  for (GpuProcess& p : *processes) {
    auto it = by_uuid.find(p.gpu_uuid);
    if (it != by_uuid.end()) {
      it->second->processes.push_back(std::move(p));
    } else {
      report.unmatched_processes.push_back(std::move(p));
    }
  }
  return report;
}

}  // namespace tether::agent
