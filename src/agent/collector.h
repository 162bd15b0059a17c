// Gathers a SystemStatus from the machine: /proc files, statvfs, nvidia-smi and tmux.
// The parsing lives in the pure parsers; this is the I/O around them, with every path and
// program configurable so tests can point it at fixtures and fake programs.
//
// nvidia-smi is the slow part (tens of milliseconds with persistence mode, seconds without
// it, when each run initializes the GPUs), so its report is cached for `gpu_cache_ttl`
// and only one query runs at a time however many requests arrive. A query that timed out
// (a wedged driver leaves nvidia-smi stuck in the kernel) is not retried for
// `gpu_retry_after_timeout`: each retry would leave another stuck process behind.
//
// Thread-safe: Collect may be called from several HTTP worker threads at once.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "agent/status.h"

namespace tether::agent {

struct CollectorConfig {
  std::string proc_root = "/proc";
  std::vector<std::string> disk_paths;  // the home directory and each --work-dir
  std::string nvidia_smi = "nvidia-smi";
  std::string passwd_file = "/etc/passwd";  // names the owners of GPU processes
  std::string tmux = "tmux";
  // Without persistence mode nvidia-smi initializes every GPU on each run, which takes
  // seconds on an 8-GPU machine; a run longer than this is a hung driver.
  std::chrono::milliseconds gpu_timeout{8000};
  std::chrono::milliseconds tmux_timeout{3000};
  std::chrono::milliseconds gpu_cache_ttl{2000};  // a scrape and a status poll share one run
  std::chrono::milliseconds gpu_retry_after_timeout{60000};
};

class Collector {
 public:
  explicit Collector(CollectorConfig config);

  // Everything but the lease, which the server adds.
  SystemStatus Collect();

 private:
  GpuReport QueryGpus();

  const CollectorConfig config_;

  std::mutex gpu_mu_;  // held while nvidia-smi runs: one query at a time
  GpuReport gpu_cache_;
  std::chrono::steady_clock::time_point gpu_cached_at_{};
  bool gpu_cache_valid_ = false;
  std::chrono::milliseconds gpu_cache_for_{0};
};

}  // namespace tether::agent
