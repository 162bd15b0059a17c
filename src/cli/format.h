// Formatting for people: sizes, durations, aligned tables.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tether::cli {

// 0 B, 512 B, 1.50 KiB, 12.0 MiB, 3.21 GiB: three significant digits.
std::string HumanBytes(uint64_t bytes);
// 45s, 3m12s, 5h03m, 2d04h.
std::string HumanDuration(int64_t seconds);
// Left-aligned columns separated by two spaces; the first row is the header.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace tether::cli
