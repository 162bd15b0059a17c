// Wire constants of the protocols the proxy port speaks: SOCKS4 and its 4a extension,
// SOCKS5 (RFC 1928) with username/password authentication (RFC 1929), and the HTTP/1.x
// proxy requests (RFC 9110, RFC 9112). The parsers and encoders are in socks.h and
// http_proxy.h; the limits here are the ones they enforce.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::proxy {

// --- SOCKS4 / SOCKS4a ----------------------------------------------------------------------
// Request: VN=4 CD DSTPORT(2, network order) DSTIP(4) USERID NUL, and for 4a, when DSTIP is
// 0.0.0.x with x != 0, HOSTNAME NUL after the user id.
// Reply:   VN=0 CD DSTPORT(2) DSTIP(4); the port and address are ignored for CONNECT.

inline constexpr uint8_t kSocks4Version = 0x04;
// A SOCKS4 reply starts with 0, not with the version.
inline constexpr uint8_t kSocks4ReplyVersion = 0x00;
// VN CD DSTPORT DSTIP: the fixed part of a request before the user id.
inline constexpr size_t kSocks4FixedBytes = 8;
inline constexpr size_t kSocks4ReplyBytes = 8;
// The user id is not checked (SOCKS4 has no password); 255 bytes matches SOCKS5's username
// field, and a longer one is a client sending garbage rather than a name.
inline constexpr size_t kSocks4MaxUserIdBytes = 255;
// A 4a hostname: a DNS name is at most 253 characters; 255 is the SOCKS5 domain bound too.
inline constexpr size_t kSocks4MaxHostnameBytes = 255;

enum class Socks4Command : uint8_t {
  kConnect = 0x01,
  kBind = 0x02,  // parsed, then refused: tether only connects outward
};

enum class Socks4Reply : uint8_t {
  kGranted = 0x5a,
  kRejected = 0x5b,  // rejected or failed; 0x5c/0x5d are about identd, never consulted here
};

// --- SOCKS5 (RFC 1928) -----------------------------------------------------------------------
// Greeting: VER=5 NMETHODS METHODS[NMETHODS]      -> VER=5 METHOD
// Auth (RFC 1929, when METHOD is 0x02):
//           VER=1 ULEN UNAME PLEN PASSWD           -> VER=1 STATUS (0 = success)
// Request:  VER=5 CMD RSV=0 ATYP DST.ADDR DST.PORT -> VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT

inline constexpr uint8_t kSocks5Version = 0x05;
// The version byte of the RFC 1929 sub-negotiation, in the request and in the status reply.
inline constexpr uint8_t kSocks5UserPassVersion = 0x01;
inline constexpr uint8_t kSocks5UserPassSuccess = 0x00;
// RFC 1929: any non-zero status is a failure, and the server must close the connection.
inline constexpr uint8_t kSocks5UserPassFailure = 0x01;
// The longest DST.ADDR of a domain name: its length is one byte.
inline constexpr size_t kSocks5MaxDomainBytes = 255;
// VER CMD RSV ATYP: the part of a request before the address.
inline constexpr size_t kSocks5RequestFixedBytes = 4;
inline constexpr size_t kSocks5Ipv4Bytes = 4;
inline constexpr size_t kSocks5Ipv6Bytes = 16;

enum class Socks5Method : uint8_t {
  kNoAuth = 0x00,
  kGssapi = 0x01,  // recognised by name only; never selected
  kUserPass = 0x02,
  kNoAcceptable = 0xff,  // the server's answer when none of the offered methods will do
};

enum class Socks5Command : uint8_t {
  kConnect = 0x01,
  kBind = 0x02,          // parsed, then refused with kCommandNotSupported
  kUdpAssociate = 0x03,  // likewise: an SSH channel carries a stream, not datagrams
};

enum class Socks5AddressType : uint8_t {
  kIpv4 = 0x01,
  kDomain = 0x03,
  kIpv6 = 0x04,
};

enum class Socks5Reply : uint8_t {
  kSucceeded = 0x00,
  kGeneralFailure = 0x01,  // also what a malformed request gets: RFC 1928 has no better code
  kNotAllowed = 0x02,      // connection not allowed by ruleset (policy refused it)
  kNetworkUnreachable = 0x03,
  kHostUnreachable = 0x04,
  kConnectionRefused = 0x05,
  kTtlExpired = 0x06,  // the closest code for "timed out"
  kCommandNotSupported = 0x07,
  kAddressTypeNotSupported = 0x08,
};

// --- HTTP/1.x proxy requests -----------------------------------------------------------------

// 16 KiB for the request line and all headers up to and including the empty line: larger
// than any browser or package manager sends (cookies go to origins, not through CONNECT),
// small enough that a connection that never finishes its head costs little.
inline constexpr size_t kHttpMaxHeadBytes = 16 * 1024;
// 100 header lines, Apache's LimitRequestFields default; the request line is not counted.
inline constexpr size_t kHttpMaxHeaderCount = 100;
inline constexpr uint16_t kHttpDefaultPort = 80;
// The longest host name accepted in a request target, as for SOCKS.
inline constexpr size_t kHttpMaxHostBytes = 255;
// The realm of the Proxy-Authenticate challenge in a 407.
inline constexpr char kHttpAuthRealm[] = "tether";

// The status codes the proxy answers with.
inline constexpr int kHttpOk = 200;
inline constexpr int kHttpBadRequest = 400;
inline constexpr int kHttpForbidden = 403;
inline constexpr int kHttpProxyAuthRequired = 407;
inline constexpr int kHttpHeadTooLarge = 431;  // RFC 6585 Request Header Fields Too Large
inline constexpr int kHttpBadGateway = 502;
inline constexpr int kHttpServiceUnavailable = 503;  // the listener is at its cap
inline constexpr int kHttpGatewayTimeout = 504;
inline constexpr int kHttpVersionNotSupported = 505;

}  // namespace tether::proxy
