#include "cli/format.h"

#include <cstdlib>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace tether::cli {

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  // Three significant digits; the unit and the decimals are chosen after rounding, so
  // 1048575 bytes reads "1.00 MiB", not "1024 KiB". Bounded by the number of units.
  for (;;) {
    int decimals = v >= 99.95 ? 0 : (v >= 9.995 ? 1 : 2);
    double scale = decimals == 0 ? 1.0 : (decimals == 1 ? 10.0 : 100.0);
    double rounded = std::round(v * scale) / scale;
    if (rounded >= 1024.0 && u < 3) {
      v /= 1024.0;
      ++u;
      continue;
    }
    return fmt::format("{:.{}f} {}", rounded, decimals, units[u]);
  }
}

std::string HumanRate(uint64_t bytes_per_second) {
  if (bytes_per_second == 0) return "-";
  double bits = static_cast<double>(bytes_per_second) * 8.0;
  if (bits < 1e6) return fmt::format("{:.0f} kbit/s", std::max(1.0, bits / 1e3));
  if (bits < 1e9) return fmt::format("{:.1f} Mbit/s", bits / 1e6);
  return fmt::format("{:.2f} Gbit/s", bits / 1e9);
}

std::string ForwardFlagLine(const nlohmann::json& f) {
  std::string kind = f.value("kind", "local");
  std::string flag = kind == "remote"    ? "-R"
                     : kind == "dynamic" ? "-D"
                     : kind == "proxy"   ? "--proxy"
                                         : "-L";
  std::string line = flag + " " + f.value("listen", "");
  std::string target = f.value("target", "");
  if (target == "socks") return line + " (socks)";
  return line + " -> " + target;
}

std::string HumanDuration(int64_t s) {
  if (s < 0) s = 0;
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string ControlPathNote(const nlohmann::json& host) {
  const auto it = host.find("control_path");
  if (it == host.end() || !it->is_object()) return "";
  const std::string path = it->value("path", "");
  const std::string state = it->value("state", "");
  if (state == "serving") return "ssh's ControlPath " + path + " rides this connection";
  return "ControlPath " + path + " " + it->value("detail", "");
}

uint16_t ListenPort(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return 0;
  const int port = std::atoi(listen.c_str() + colon + 1);
  return port > 0 && port <= 65535 ? static_cast<uint16_t>(port) : 0;
}

}  // namespace tether::cli
