#include "proxy/sniff.h"

#include <cstdint>

#include "proxy/proxy_wire.h"

namespace tether::proxy {

Protocol Sniff(std::string_view first_bytes) {
  if (first_bytes.empty()) return Protocol::kNeedMore;
  const auto first = static_cast<uint8_t>(first_bytes[0]);
  if (first == kSocks4Version) return Protocol::kSocks4;
  if (first == kSocks5Version) return Protocol::kSocks5;
  // Methods are case-sensitive tokens and every registered one is upper case; a lower-case
  // letter still goes to the HTTP parser, whose 400 tells a person at a terminal more than
  // a closed connection would.
  if ((first >= 'A' && first <= 'Z') || (first >= 'a' && first <= 'z')) return Protocol::kHttp;
  return Protocol::kUnknown;
}

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kNeedMore:
      return "undecided";
    case Protocol::kSocks4:
      return "SOCKS4";
    case Protocol::kSocks5:
      return "SOCKS5";
    case Protocol::kHttp:
      return "HTTP";
    case Protocol::kUnknown:
      break;
  }
  return "unknown";
}

}  // namespace tether::proxy
