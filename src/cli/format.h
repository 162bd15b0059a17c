// Formatting for people: sizes, durations, aligned tables.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tether::cli {

// 0 B, 512 B, 1.50 KiB, 12.0 MiB, 3.21 GiB: three significant digits.
std::string HumanBytes(uint64_t bytes);
// Bytes per second as bits: "-" for 0, 850 kbit/s, 12.3 Mbit/s, 1.20 Gbit/s.
std::string HumanRate(uint64_t bytes_per_second);
// One forward of a status reply as ssh would write it, with where it actually listens:
// "-L 127.0.0.1:8000 -> localhost:8000", "-D 127.0.0.1:1080 (socks)", "-R server:9000 -> ...".
std::string ForwardFlagLine(const nlohmann::json& forward);
// The port of a forward's `listen` in status ("127.0.0.1:8000", "server localhost:9000"):
// what follows the last colon, or 0 when there is none (a unix socket) or it is no port.
uint16_t ListenPort(const std::string& listen);
// 45s, 3m12s, 5h03m, 2d04h.
std::string HumanDuration(int64_t seconds);
// One line on the user's own ControlPath from a host's status reply ("" when ssh_config
// names none): "ssh's ControlPath P rides this connection", or "ControlPath P <why not>".
std::string ControlPathNote(const nlohmann::json& host);
// Left-aligned columns separated by two spaces; the first row is the header.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace tether::cli
