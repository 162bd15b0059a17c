#include "forward/socket_table.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>

#include "common/text.h"

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

// "0100007F:1F90" into address and port.
bool ParseEndpoint(std::string_view s, std::string* address, uint16_t* port) {
  size_t colon = s.find(':');
  if (colon != 8 && colon != 32) return false;
  auto number = ParseHex(s.substr(colon + 1));
  if (!number || *number > 0xFFFF) return false;
  *port = static_cast<uint16_t>(*number);
  *address = std::string(s.substr(0, colon));
  return std::all_of(address->begin(), address->end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
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
  for (std::string_view line : SplitLines(text)) {
    auto f = SplitWords(line);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
    if (f.size() < 10 || f[0].empty() || f[0].back() != ':') continue;
    SocketEntry e;
    auto state = ParseHex(f[3]);
    auto uid = ParseUint(f[7]);
    auto inode = ParseUint(f[9]);
    if (!ParseEndpoint(f[1], &e.local_address, &e.local_port) ||
        !ParseEndpoint(f[2], &e.remote_address, &e.remote_port) || !state || *state > 0xFF ||
        !uid || *uid > UINT32_MAX || !inode) {
      continue;
    }
    e.state = static_cast<int>(*state);
    e.uid = static_cast<uint32_t>(*uid);
    e.inode = *inode;
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

std::optional<uint32_t> ListenerPreferringOthers(const std::vector<SocketEntry>& table,
                                                 uint16_t port, uint32_t ours) {
  for (const auto& e : table) {
    if (e.state == kStateListen && e.local_port == port && e.inode != 0 && e.uid != ours) {
      return e.uid;
    }
  }
  return ListenerOf(table, port);
}

}  // namespace tether::forward
