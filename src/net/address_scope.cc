#include "net/address_scope.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>

namespace tether::net {
namespace {

AddressScope ScopeOfV4(uint32_t a) {  // host byte order
  auto in = [a](uint32_t net, int bits) {
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (in(0x7f000000, 8)) return AddressScope::kLoopback;
  if (in(0xa9fe0000, 16)) return AddressScope::kLinkLocal;
  if (in(0x0a000000, 8) || in(0xac100000, 12) || in(0xc0a80000, 16) || in(0x64400000, 10)) {
    return AddressScope::kPrivate;
  }
  if (in(0x00000000, 8) || in(0xe0000000, 4) || a == 0xffffffff) return AddressScope::kOther;
  return AddressScope::kPublic;
}

}  // namespace

AddressScope ScopeOf(const sockaddr* address) {
  if (address == nullptr) return AddressScope::kOther;
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    return ScopeOfV4(ntohl(v4->sin_addr.s_addr));
  }
  if (address->sa_family != AF_INET6) return AddressScope::kOther;
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
  const uint8_t* b = v6->sin6_addr.s6_addr;
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, kMapped, 12) == 0) {
    return ScopeOfV4((uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) |
                     b[15]);
  }
  static const uint8_t kZero[16] = {};
  if (std::memcmp(b, kZero, 15) == 0 && b[15] == 1) return AddressScope::kLoopback;
  if (std::memcmp(b, kZero, 16) == 0) return AddressScope::kOther;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressScope::kLinkLocal;
  if ((b[0] & 0xfe) == 0xfc) return AddressScope::kPrivate;
  if (b[0] == 0xff) return AddressScope::kOther;
  return AddressScope::kPublic;
}

std::optional<AddressScope> ScopeOfLiteral(const std::string& host) {
  sockaddr_in v4{};
  v4.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
    return ScopeOf(reinterpret_cast<sockaddr*>(&v4));
  }
  sockaddr_in6 v6{};
  v6.sin6_family = AF_INET6;
  if (::inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
    return ScopeOf(reinterpret_cast<sockaddr*>(&v6));
  }
  return std::nullopt;
}

const char* DescribeScope(AddressScope scope) {
  switch (scope) {
    case AddressScope::kLoopback:
      return "the laptop's loopback";
    case AddressScope::kLinkLocal:
      return "a link-local address of the laptop's network";
    case AddressScope::kPrivate:
      return "a private network of the laptop's";
    case AddressScope::kPublic:
      return "a public address";
    case AddressScope::kOther:
      return "not a unicast address";
  }
  return "?";
}

bool Allows(Reach reach, AddressScope scope) {
  switch (reach) {
    case Reach::kAll:
      return scope != AddressScope::kOther;
    case Reach::kPrivate:
      return scope == AddressScope::kPublic || scope == AddressScope::kPrivate;
    case Reach::kPublic:
      return scope == AddressScope::kPublic;
  }
  return false;
}

std::optional<Reach> ParseReach(std::string_view text) {
  if (text == "public") return Reach::kPublic;
  if (text == "private") return Reach::kPrivate;
  if (text == "all") return Reach::kAll;
  return std::nullopt;
}

const char* ReachName(Reach reach) {
  switch (reach) {
    case Reach::kPublic:
      return "public";
    case Reach::kPrivate:
      return "private";
    case Reach::kAll:
      return "all";
  }
  return "?";
}

}  // namespace tether::net
