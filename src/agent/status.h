// One snapshot of the server: what GET /status encodes as JSON and GET /metrics as
// Prometheus text. Every section is optional: a part that could not be read is absent
// and `errors` says why, so one unreadable file never hides the GPUs.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/lease.h"
#include "agent/nvidia_smi.h"
#include "agent/proc.h"
#include "agent/tmux.h"

namespace tether::agent {

struct DiskUsage {
  std::string path;
  // From statvfs; absent with `error` set when the path cannot be examined.
  std::optional<uint64_t> total_bytes;
  std::optional<uint64_t> free_bytes;       // including blocks reserved for root
  std::optional<uint64_t> available_bytes;  // what this user may still write
  std::string error;
};

struct TmuxReport {
  bool available = false;  // a tmux binary exists
  std::vector<TmuxSession> sessions;
};

struct SystemStatus {
  std::string hostname;
  std::chrono::system_clock::time_point collected_at;
  int cpus = 0;  // online CPUs, to read the load against
  std::optional<double> uptime_seconds;
  std::optional<LoadAvg> load;
  std::optional<MemInfo> memory;
  std::vector<DiskUsage> disks;
  GpuReport gpu;
  std::vector<ListeningPort> ports;
  TmuxReport tmux;
  LeaseSnapshot lease;
  // "meminfo: cannot open /proc/meminfo: ...", one a failed section.
  std::vector<std::string> errors;
};

}  // namespace tether::agent
