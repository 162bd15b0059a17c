// SOCKS4, SOCKS4a and SOCKS5 (RFC 1928, with RFC 1929 username/password), server side:
// pure, incremental parsers of what a client sends, and encoders of the replies.
// No I/O: the caller reads, calls a parser with everything buffered, writes what it says.
//
// Each parser returns a ParseResult (parse_result.h): need-more, done (drop consumed()
// bytes, keep the rest: a client may send its next message without waiting for the
// reply), or refused (log refusal().reason, write refusal().reply, close).
//
// SOCKS5, the caller's sequence:
//   1. ParseSocks5Greeting. Decide with SelectSocks5Method(greeting, auth) and write
//      EncodeSocks5MethodSelection(method). kNoAcceptable: close after writing it.
//   2. Only when the method is kUserPass: ParseSocks5UserPass, compare the credentials
//      (constant time) when the listener requires them, and write
//      EncodeSocks5AuthStatus(ok). Not ok: close after writing it (RFC 1929).
//   3. ParseSocks5Request: the target. Only CONNECT comes back done; BIND and UDP ASSOCIATE
//      are parsed whole and refused with kCommandNotSupported. Open the channel, then
//      write EncodeSocks5Reply(kSucceeded or the failure's code) and relay.
// SOCKS4 / 4a, one message: ParseSocks4Request, then EncodeSocks4Reply(kGranted or
// kRejected). SOCKS4 has no password: a listener that requires one refuses every SOCKS4
// request (write EncodeSocks4Reply(kRejected) and close).
//
// What is refused, with the code written back:
//   SOCKS5 greeting: version not 5 (nothing written), no methods (method 0xff).
//   RFC 1929: version not 1 (status 1).
//   SOCKS5 request: version not 5, reserved byte not 0, empty domain, a domain with a NUL,
//     control byte or space, port 0 (all kGeneralFailure: RFC 1928 has nothing closer);
//     an unknown command, BIND, UDP ASSOCIATE (kCommandNotSupported); an address type
//     other than 1, 3, 4 (kAddressTypeNotSupported).
//   SOCKS4: version not 4, an unknown command, BIND, port 0, a user id or 4a hostname
//     over 255 bytes (refused once 256 bytes of it are in without its NUL), an empty 4a
//     hostname or one with a control byte or space (all kRejected: SOCKS4 has one code).
// Fixed fields (version, command, reserved byte, address type, a zero length) are refused
// as soon as their byte arrives; the address, the port, BIND and UDP ASSOCIATE once the
// whole message is in, so the log line can name the target.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/parse_result.h"
#include "proxy/proxy_wire.h"
#include "proxy/target.h"

namespace tether::proxy {

// --- SOCKS5 ----------------------------------------------------------------------------------

// What the listener asks of a client before it may connect.
enum class SocksAuth {
  kNone,      // anyone may connect
  kUserPass,  // RFC 1929 username and password, checked by the caller
};

struct Socks5Greeting {
  std::vector<uint8_t> methods;  // as offered, 1..255 of them, unknown values included

  bool Offers(Socks5Method method) const;
  bool operator==(const Socks5Greeting&) const = default;
};

ParseResult<Socks5Greeting> ParseSocks5Greeting(std::string_view buffered);

// The decision point. kUserPass: user/pass if offered, else kNoAcceptable. kNone: no-auth
// if offered; else user/pass if offered (a client set up with credentials only offers that
// one), and then the caller accepts any credentials; else kNoAcceptable.
Socks5Method SelectSocks5Method(const Socks5Greeting& greeting, SocksAuth auth);

// RFC 1929. Lengths of 0 are accepted (RFC 1929 says 1..255): the parser holds no policy,
// and an empty name simply fails the caller's comparison.
ParseResult<Credentials> ParseSocks5UserPass(std::string_view buffered);

// The target of a CONNECT request. Address bytes become text (IPv6 in RFC 5952 form).
ParseResult<Target> ParseSocks5Request(std::string_view buffered);

// VER METHOD.
std::string EncodeSocks5MethodSelection(Socks5Method method);
// VER=1 STATUS: 0 when accepted, 1 when not.
std::string EncodeSocks5AuthStatus(bool accepted);
// VER REP RSV ATYP BND.ADDR BND.PORT with BND 0.0.0.0:0, which clients ignore for CONNECT
// (the address the server side bound is not known through an SSH channel anyway).
std::string EncodeSocks5Reply(Socks5Reply reply);
// The same with a bound address: an IPv4 or IPv6 literal as such, anything else as a domain
// name (cut to 255 bytes). `bound.kind` is not trusted: the text decides.
std::string EncodeSocks5Reply(Socks5Reply reply, const Target& bound);

// --- SOCKS4 / SOCKS4a ----------------------------------------------------------------------

struct Socks4Request {
  Target target;        // 4a: the hostname as sent; 4: the dotted address
  std::string user_id;  // may be empty; never checked by tether
  bool socks4a = false;
  bool operator==(const Socks4Request&) const = default;
};

ParseResult<Socks4Request> ParseSocks4Request(std::string_view buffered);

// VN=0 CD 0 0 0 0 0 0: the port and address of a CONNECT reply are ignored by clients.
std::string EncodeSocks4Reply(Socks4Reply reply);

}  // namespace tether::proxy
