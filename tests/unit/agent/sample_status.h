// A status snapshot with a bit of everything, for the encoders' and the server's tests.
#pragma once

#include "agent/status.h"

namespace tether::agent::testing {

inline SystemStatus SampleStatus() {
  SystemStatus s;
  s.hostname = "gpu01";
  s.collected_at = std::chrono::system_clock::from_time_t(1714564800);
  s.cpus = 64;
  s.uptime_seconds = 1234567.89;
  s.load = LoadAvg{12.47, 11.92, 10.35, 17, 2341};
  s.memory = MemInfo{1000ull << 20, 600ull << 20, 400ull << 20, 0, 0};
  s.disks.push_back(DiskUsage{"/home/ana", 1000ull << 30, 400ull << 30, 300ull << 30, ""});
  s.disks.push_back(DiskUsage{"/data/missing", std::nullopt, std::nullopt, std::nullopt,
                              "No such file or directory"});
  s.gpu.state = GpuState::kOk;
  Gpu busy{0, "GPU-aaaa", "NVIDIA H100 80GB HBM3", 100.0, 71234, 81559, 58.0, 612.34, {}};
  busy.processes.push_back(GpuProcess{"GPU-aaaa", 81234, "python3", 70604, 1001, "ana"});
  busy.processes.push_back(
      GpuProcess{"GPU-aaaa", 81235, "odd \"name\"\n", std::nullopt, std::nullopt, ""});
  s.gpu.gpus.push_back(busy);
  // MIG: no utilization.
  s.gpu.gpus.push_back(
      Gpu{1, "GPU-bbbb", "NVIDIA A100-SXM4-40GB", std::nullopt, 0, 40960, 29.0, 52.3, {}});
  s.ports.push_back(ListeningPort{false, "127.0.0.1", 8080, 1000});
  s.ports.push_back(ListeningPort{true, "::", 22, 0});
  s.tmux.available = true;
  s.tmux.sessions.push_back(TmuxSession{"train", 3, 1, 1714550000});
  s.errors.push_back("tmux: something odd");
  return s;
}

}  // namespace tether::agent::testing
