// GPU status from nvidia-smi's CSV output, as pure parsers over recorded text.
//
// The agent asks nvidia-smi, not NVML: nvidia-smi ships with every driver, speaks a
// stable CSV contract, and lets tests replay recorded outputs byte for byte, while a
// dlopen'ed NVML would mean hand-copied ABI structs that no test here could exercise.
// The cost, one short-lived process per query, is paid at most once per cache period
// (see collector.h).
//
// The two queries, with --format=csv,noheader,nounits:
//   --query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,
//               temperature.gpu,power.draw
//     0, GPU-5c7d..., NVIDIA A100-SXM4-80GB, 98, 78514, 81920, 64, 387.21
//   --query-compute-apps=gpu_uuid,pid,process_name,used_memory
//     GPU-5c7d..., 2204811, /home/ana/envs/llm/bin/python, 78498
// uuid is queried besides the fields because the process list names GPUs by
// uuid only. A value nvidia-smi cannot give reads "[N/A]", "[Not Supported]",
// "[GPU is lost]", "[Unknown Error]", ...: any bracketed word (or a bare "N/A") becomes
// an absent value, never an error. Names may hold commas, so the fixed-shape fields are
// taken from both ends of a line and the name is what lies between.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tether::agent {

inline constexpr std::string_view kGpuQueryArg =
    "--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total,temperature.gpu,"
    "power.draw";
inline constexpr std::string_view kComputeAppsQueryArg =
    "--query-compute-apps=gpu_uuid,pid,process_name,used_memory";
inline constexpr std::string_view kCsvFormatArg = "--format=csv,noheader,nounits";

struct GpuProcess {
  std::string gpu_uuid;
  int64_t pid = 0;
  std::string name;                         // "[Not Found]" in a foreign PID namespace
  std::optional<uint64_t> used_memory_mib;  // absent under MIG and WDDM
  // Whose process: from /proc/PID/status and /etc/passwd, filled in by the collector.
  // Absent when the pid is not visible here (another PID namespace) or has ended.
  std::optional<int64_t> uid;
  std::string user;  // empty: no passwd line names the uid

  bool operator==(const GpuProcess&) const = default;
};

struct Gpu {
  int index = 0;
  std::string uuid;
  std::string name;
  std::optional<double> utilization_percent;  // absent for a GPU in MIG mode
  std::optional<uint64_t> memory_used_mib;
  std::optional<uint64_t> memory_total_mib;
  std::optional<double> temperature_celsius;
  std::optional<double> power_watts;
  std::vector<GpuProcess> processes;

  bool operator==(const Gpu&) const = default;
};

// What the GPU section of a status report says.
enum class GpuState {
  kOk,         // nvidia-smi answered; `gpus` holds at least one GPU
  kNoDevices,  // the driver is loaded but sees no GPU ("No devices were found")
  kAbsent,     // no nvidia-smi on this machine: not a GPU server, not an error
  kError,      // nvidia-smi failed (driver not loaded, version mismatch, timeout, ...)
};

std::string_view GpuStateName(GpuState state);

struct GpuReport {
  GpuState state = GpuState::kAbsent;
  std::vector<Gpu> gpus;
  // Processes whose gpu_uuid names no GPU of the list (a MIG device on some drivers).
  std::vector<GpuProcess> unmatched_processes;
  // For kError: nvidia-smi's own first line, e.g. "NVIDIA-SMI has failed because ...".
  std::string error;
};

// One parsed line per GPU. Errors name the line ("line 3: ...").
Result<std::vector<Gpu>> ParseGpuQuery(std::string_view csv);
// One parsed line per process; "No running processes found" or nothing is an empty list.
Result<std::vector<GpuProcess>> ParseComputeApps(std::string_view csv);

// The raw outcome of running both queries; `exit_code` as from a shell (0 = success).
struct NvidiaSmiRun {
  int exit_code = 0;
  std::string out;
  std::string err;
};

// Turns the two runs into a report: recognizes "No devices were found", reports the
// driver's own error line otherwise, and attaches each process to its GPU. When only the
// process query fails, the GPUs are still reported (kOk) without processes and `error`
// says why.
GpuReport InterpretNvidiaSmi(const NvidiaSmiRun& gpu_query, const NvidiaSmiRun& apps_query);

}  // namespace tether::agent
