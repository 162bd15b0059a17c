// libFuzzer target for the agent's text parsers: nvidia-smi CSV (src/agent/nvidia_smi.cc),
// /proc files (src/agent/proc.cc) and tmux lines (src/agent/tmux.cc).
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/nvidia_smi/ as the ctest fuzz.nvidia_smi (label fuzz).
//
// Besides memory safety it checks what the encoders rely on: a parsed GPU has a name and
// no negative or non-finite value, and the report's state agrees with its GPU list.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>

#include "agent/nvidia_smi.h"
#include "agent/proc.h"
#include "agent/tmux.h"

namespace {

using tether::agent::Gpu;
using tether::agent::GpuState;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckValue(const std::optional<double>& v) {
  if (v) Check(std::isfinite(*v) && *v >= 0);
}

void CheckGpu(const Gpu& gpu) {
  Check(!gpu.name.empty());
  Check(gpu.index >= 0);
  CheckValue(gpu.utilization_percent);
  CheckValue(gpu.temperature_celsius);
  CheckValue(gpu.power_watts);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The GPU query's answer, then (after the first NUL, which neither answer contains) the
  // compute-apps query's: parsed apart, and interpreted together as the agent does.
  const size_t cut = input.find('\0');
  const std::string_view gpu_out = input.substr(0, cut);
  const std::string_view apps_out =
      cut == std::string_view::npos ? std::string_view() : input.substr(cut + 1);

  auto gpus = tether::agent::ParseGpuQuery(gpu_out);
  if (gpus.ok()) {
    for (const Gpu& gpu : *gpus) CheckGpu(gpu);
  }
  auto apps = tether::agent::ParseComputeApps(apps_out);
  if (apps.ok()) {
    for (const auto& p : *apps) Check(p.pid > 0);
  }
  // Either run may fail (nvidia-smi exits 9 without a driver, for one).
  for (auto [gpu_exit, apps_exit] : {std::pair{0, 0}, std::pair{0, 9}, std::pair{9, 0}}) {
    const tether::agent::NvidiaSmiRun gpu_run{gpu_exit, std::string(gpu_out), ""};
    const tether::agent::NvidiaSmiRun apps_run{apps_exit, std::string(apps_out), ""};
    auto report = tether::agent::InterpretNvidiaSmi(gpu_run, apps_run);
    Check((report.state == GpuState::kOk) == !report.gpus.empty());
    if (report.state == GpuState::kError) Check(!report.error.empty());
    for (const Gpu& gpu : report.gpus) CheckGpu(gpu);
  }

  // The /proc and tmux parsers take the whole input.
  (void)tether::agent::ParseLoadAvg(input);
  (void)tether::agent::ParseUptime(input);
  (void)tether::agent::ParseMemInfo(input);
  for (bool v6 : {false, true}) {
    auto ports = tether::agent::ParseProcNetTcp(input, v6);
    if (ports.ok()) {
      for (const auto& p : *ports) Check(p.port >= 0 && p.port <= 65535 && !p.address.empty());
    }
  }
  (void)tether::agent::ParseTmuxSessions(input);
  return 0;
}
