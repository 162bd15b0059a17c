// What a proxy client asks for: where to connect (Target) and, when it authenticates, as
// whom (Credentials). Shared by the SOCKS and HTTP parsers, with the checks both apply to
// a host name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tether::proxy {

enum class HostKind { kName, kIpv4, kIpv6 };

// A destination as the client named it. An address the client sent as bytes (SOCKS) is
// stored as text, so every target reaches the SSH direct-tcpip channel the same way.
struct Target {
  std::string host;  // a name, a dotted IPv4 address, or an IPv6 address without brackets
  uint16_t port = 0;
  HostKind kind = HostKind::kName;

  // "host:port", or "[v6]:port". Host names are printed through Printable().
  std::string ToString() const;
  bool operator==(const Target&) const = default;
};

// A username and password the client offered (RFC 1929 or HTTP Basic). The parsers only
// extract them; the caller compares them in constant time.
struct Credentials {
  std::string username;
  std::string password;
  bool operator==(const Credentials&) const = default;
};

// kIpv4 / kIpv6 when `host` is an address literal in text form (IPv6 without brackets),
// kName otherwise. A SOCKS5 "domain name" of "127.0.0.1" is an address all the same.
HostKind ClassifyHost(std::string_view host);

// Whether `name` is acceptable as a host name from a SOCKS request: 1..max_bytes bytes, no
// NUL (it would cut the name short in C strings downstream), no other control byte and no
// space (no host has them; they would only garble logs). Bytes >= 0x80 pass: resolving
// such a name fails later, with a better message.
bool IsAcceptableSocksHost(std::string_view name, size_t max_bytes);

// `bytes` made safe for one log line: printable ASCII kept, anything else as \xNN, and cut
// at max_chars characters of input with "..." appended.
std::string Printable(std::string_view bytes, size_t max_chars = 80);

// "0x1f": a protocol byte, for messages.
std::string HexByte(uint8_t byte);

}  // namespace tether::proxy
