// Parsers for the /proc files the agent reads, over text (tests feed recorded files):
//   /proc/loadavg   "12.47 11.92 10.35 17/2341 2209155"
//   /proc/uptime    "1234567.89 38765432.10"       (seconds up, idle seconds summed over CPUs)
//   /proc/meminfo   "MemTotal:       1056462516 kB" lines
//   /proc/net/tcp   "   1: 0100007F:1F90 00000000:0000 0A ... 1000 0 918273 ..."
//   /proc/net/tcp6  the same with 32-hex-digit addresses
//   /proc/PID/status "Uid:\t1000\t1000\t1000\t1000" (real, effective, saved, filesystem)
//   /etc/passwd     "ana:x:1000:1000:Ana:/home/ana:/bin/bash"
// Addresses in /proc/net/tcp* are the kernel's in-memory words printed as hex, so they
// are in the byte order of the machine that wrote them; the agent only ever reads its
// own machine's files, and the fixtures come from little-endian x86-64 and arm64 hosts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tether::agent {

struct LoadAvg {
  double load1 = 0;
  double load5 = 0;
  double load15 = 0;
  int64_t running = 0;  // runnable scheduling entities right now
  int64_t total = 0;    // scheduling entities that exist

  bool operator==(const LoadAvg&) const = default;
};

struct MemInfo {
  uint64_t total_bytes = 0;
  // MemAvailable; kernels before 3.14 lack it, and then it is estimated as
  // MemFree + Buffers + Cached (what `free` did before).
  uint64_t available_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t swap_total_bytes = 0;
  uint64_t swap_free_bytes = 0;

  bool operator==(const MemInfo&) const = default;
};

struct ListeningPort {
  bool ipv6 = false;    // from /proc/net/tcp6
  std::string address;  // "127.0.0.1", "::", "::ffff:127.0.0.1"
  int port = 0;
  int64_t uid = 0;  // owner of the socket

  bool operator==(const ListeningPort&) const = default;
  auto operator<=>(const ListeningPort&) const = default;
};

Result<LoadAvg> ParseLoadAvg(std::string_view text);
// Seconds since boot.
Result<double> ParseUptime(std::string_view text);
Result<MemInfo> ParseMemInfo(std::string_view text);
// The sockets in state LISTEN (0A). Other states are skipped; a malformed row is an
// error naming its line.
Result<std::vector<ListeningPort>> ParseProcNetTcp(std::string_view text, bool ipv6);
// The real uid of a process, from its status file: whose process it is.
Result<int64_t> ParseStatusUid(std::string_view text);

}  // namespace tether::agent
