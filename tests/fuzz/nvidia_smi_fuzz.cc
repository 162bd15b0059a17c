// libFuzzer target for the agent's text parsers: nvidia-smi CSV (src/agent/nvidia_smi.cc),
// /proc files (src/agent/proc.cc) and tmux lines (src/agent/tmux.cc).
//
// Not part of the CMake build. Build and run it with clang from the repository root (one
// command line, split here):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I src
//     tests/fuzz/nvidia_smi_fuzz.cc src/agent/nvidia_smi.cc src/agent/proc.cc
//     src/agent/tmux.cc src/agent/text.cc src/common/result.cc -o /tmp/nvidia_smi_fuzz
//   /tmp/nvidia_smi_fuzz -max_total_time=60 tests/unit/agent/testdata/nvidia_smi
//
// Besides memory safety it checks what the encoders rely on: a parsed GPU has a name and
// no negative or non-finite value, and the report's state agrees with its GPU list.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

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

  auto gpus = tether::agent::ParseGpuQuery(input);
  if (gpus.ok()) {
    for (const Gpu& gpu : *gpus) CheckGpu(gpu);
  }
  auto apps = tether::agent::ParseComputeApps(input);
  if (apps.ok()) {
    for (const auto& p : *apps) Check(p.pid > 0);
  }
  // The same bytes as the GPU answer and as the process answer, with either exit status.
  for (int exit_code : {0, 9}) {
    const tether::agent::NvidiaSmiRun run{exit_code, std::string(input), ""};
    auto report = tether::agent::InterpretNvidiaSmi(run, run);
    Check((report.state == GpuState::kOk) == !report.gpus.empty());
    if (report.state == GpuState::kError) Check(!report.error.empty());
    for (const Gpu& gpu : report.gpus) CheckGpu(gpu);
  }

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
