// Live counters of one forward, read by `tether status`.
#pragma once

#include <cstdint>

namespace tether::forward {

struct ForwardStats {
  uint64_t live = 0;       // connections being served now
  uint64_t total = 0;      // connections accepted since start
  uint64_t failed = 0;     // connections the server refused to open (target down, policy)
  uint64_t bytes_in = 0;   // server -> laptop
  uint64_t bytes_out = 0;  // laptop -> server
};

}  // namespace tether::forward
