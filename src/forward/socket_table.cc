#include "forward/socket_table.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace tether::forward {
namespace {

constexpr int kStateListen = 0x0A;

std::string Hex(const uint8_t* bytes, size_t n, bool reverse_words) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (size_t word = 0; word < n; word += 4) {
    for (size_t i = 0; i < 4; ++i) {
      uint8_t b = bytes[word + (reverse_words ? 3 - i : i)];
      out += kDigits[b >> 4];
      out += kDigits[b & 0xF];
    }
  }
  return out;
}

template <typename T>
bool ParseNumber(std::string_view s, T* out, int base) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && end == s.data() + s.size();
}

// "0100007F:1F90" into address and port.
bool ParseEndpoint(std::string_view s, std::string* address, uint16_t* port) {
  size_t colon = s.find(':');
  if (colon == std::string_view::npos || (colon != 8 && colon != 32)) return false;
  if (!ParseNumber(s.substr(colon + 1), port, 16)) return false;
  *address = std::string(s.substr(0, colon));
  return std::all_of(address->begin(), address->end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
  });
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

bool SameHex(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::vector<SocketEntry> ParseSocketTable(std::string_view text) {
  std::vector<SocketEntry> table;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto f = Fields(line);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    if (f.size() < 10 || f[0].empty() || f[0].back() != ':') continue;
    SocketEntry e;
    if (!ParseEndpoint(f[1], &e.local_address, &e.local_port) ||
        !ParseEndpoint(f[2], &e.remote_address, &e.remote_port) ||
        !ParseNumber(f[3], &e.state, 16) || !ParseNumber(f[7], &e.uid, 10) ||
        !ParseNumber(f[9], &e.inode, 10)) {
      continue;
    }
    table.push_back(std::move(e));
  }
  return table;
}

std::vector<std::string> TableForms(const std::string& ip) {
  std::array<uint8_t, 16> bytes{};
  if (inet_pton(AF_INET, ip.c_str(), bytes.data()) == 1) {
    std::array<uint8_t, 16> mapped{};
    mapped[10] = mapped[11] = 0xFF;
    std::copy(bytes.begin(), bytes.begin() + 4, mapped.begin() + 12);
    return {Hex(bytes.data(), 4, false), Hex(bytes.data(), 4, true), Hex(mapped.data(), 16, false),
            Hex(mapped.data(), 16, true)};
  }
  if (inet_pton(AF_INET6, ip.c_str(), bytes.data()) == 1) {
    return {Hex(bytes.data(), 16, false), Hex(bytes.data(), 16, true)};
  }
  return {};
}

std::string PortHex(uint16_t port) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  return {kDigits[port >> 12], kDigits[(port >> 8) & 0xF], kDigits[(port >> 4) & 0xF],
          kDigits[port & 0xF]};
}

std::optional<uint32_t> OwnerOfConnection(const std::vector<SocketEntry>& table,
                                          const std::string& origin_ip, uint16_t origin_port,
                                          uint16_t listen_port) {
  std::vector<std::string> forms = TableForms(origin_ip);
  for (const auto& e : table) {
    // A socket in time-wait or orphaned has no process and prints uid 0: never an answer.
    if (e.inode == 0 || e.state == kStateListen) continue;
    if (e.local_port != origin_port || e.remote_port != listen_port) continue;
    bool from_origin = std::any_of(forms.begin(), forms.end(), [&](const std::string& f) {
      return SameHex(f, e.local_address);
    });
    if (from_origin) return e.uid;
  }
  return std::nullopt;
}

std::optional<uint32_t> ListenerOf(const std::vector<SocketEntry>& table, uint16_t port) {
  for (const auto& e : table) {
    if (e.state == kStateListen && e.local_port == port && e.inode != 0) return e.uid;
  }
  return std::nullopt;
}

}  // namespace tether::forward
