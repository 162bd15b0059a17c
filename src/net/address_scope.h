// What kind of network an address is on, and which kinds the server may reach through the
// laptop. The server proxy and reverse dynamic forwards open connections from the laptop
// for programs on the server; by default they reach the internet only, not the laptop's
// own loopback (its other tunnels, local databases, admin ports), its link-local
// neighbours (cloud metadata at 169.254.169.254) or its private networks. Checked on each
// address a name resolves to, just before connecting, so a name cannot smuggle one in.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>

namespace tether::net {

enum class AddressScope {
  kLoopback,   // 127.0.0.0/8, ::1
  kLinkLocal,  // 169.254.0.0/16, fe80::/10
  kPrivate,    // 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7
  kPublic,     // everything else that is a unicast address
  kOther,      // unspecified (0.0.0.0, ::), multicast, broadcast
};
// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) count as their IPv4 address.
AddressScope ScopeOf(const sockaddr* address);
// The scope of an IPv4 or IPv6 address written out ("127.0.0.1", "::1"); nullopt for a
// name, which only resolving can place.
std::optional<AddressScope> ScopeOfLiteral(const std::string& host);
// "the laptop's loopback", "a link-local address", ... for error messages.
const char* DescribeScope(AddressScope scope);

// What the server may reach through the laptop: public addresses; also private networks;
// everything (loopback and link-local included).
enum class Reach { kPublic, kPrivate, kAll };
bool Allows(Reach reach, AddressScope scope);
// "public", "private", "all" (the config and command-line spelling), or nullopt.
std::optional<Reach> ParseReach(std::string_view text);
const char* ReachName(Reach reach);

}  // namespace tether::net
