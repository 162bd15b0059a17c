#include "proxy/target.h"

#include <arpa/inet.h>

#include <string>

namespace tether::proxy {

std::string Target::ToString() const {
  const std::string port_text = ":" + std::to_string(port);
  if (kind == HostKind::kIpv6) return "[" + host + "]" + port_text;
  return Printable(host) + port_text;
}

HostKind ClassifyHost(std::string_view host) {
  // inet_pton needs a C string; a host is at most a few hundred bytes, and one with a NUL
  // inside is no address.
  if (host.empty() || host.size() > INET6_ADDRSTRLEN || host.find('\0') != host.npos) {
    return HostKind::kName;
  }
  const std::string text(host);
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return HostKind::kIpv4;
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return HostKind::kIpv6;
  return HostKind::kName;
}

bool IsAcceptableSocksHost(std::string_view name, size_t max_bytes) {
  if (name.empty() || name.size() > max_bytes) return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

std::string Printable(std::string_view bytes, size_t max_chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const size_t n = bytes.size() < max_chars ? bytes.size() : max_chars;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto u = static_cast<unsigned char>(bytes[i]);
    if (u >= 0x20 && u < 0x7f && u != '\\') {
      out += static_cast<char>(u);
    } else {
      // The backslash is escaped too, so an escape in the output always means a byte.
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  if (bytes.size() > max_chars) out += "...";
  return out;
}

std::string HexByte(uint8_t byte) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[byte >> 4] + kHex[byte & 0xf];
}

}  // namespace tether::proxy
