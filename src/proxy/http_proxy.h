// HTTP/1.x proxy requests, server side: a pure, incremental parser of the request head and
// encoders of the proxy's own responses. No I/O.
//
// Two kinds of request are served:
//   CONNECT host:port HTTP/1.1        a tunnel: answer EncodeHttpConnectEstablished() once
//   CONNECT [v6]:port HTTP/1.1        the channel is open, then relay raw both ways
//   GET http://host[:port]/p?q HTTP/1.1   absolute-form: the head is rewritten for the origin
//                                     (forward_head) and the connection then relayed raw
// Refused with a status and a reason: https:// in absolute form (a client proxies https
// with CONNECT), origin-form "GET /x" and "OPTIONS *" (not a proxy request: no host), other
// schemes, user info in the URL, a malformed request line or header, a version other than
// HTTP/1.0 or 1.1 (505), both Content-Length and Transfer-Encoding or disagreeing
// Content-Lengths (a request the origin might frame differently from what was meant), a
// head over kHttpMaxHeadBytes or with more than kHttpMaxHeaderCount headers (431).
//
// One request per connection. The rewritten head goes to the origin with
// "Connection: close", then the rest of the stream (the body, and anything after it) is
// relayed raw both ways until either side closes; the origin's response passes unchanged.
// Keeping the plain-HTTP path this simple is the point: a client reusing the connection
// for a second request sends it raw to the first origin, which, asked to close, does not
// serve it. Browsers and package managers open a new connection after "Connection: close"
// in the response, and nearly all traffic today is https through CONNECT anyway.
//
// What the rewrite removes (hop-by-hop: about the client-to-proxy link, not the request):
//   Proxy-Authorization  the proxy's credentials must not reach the origin
//   Proxy-Connection, Connection, Keep-Alive, Proxy-Authenticate, TE
//   every header the Connection header names, except Content-Length and Transfer-Encoding:
//     the body is relayed unchanged, so its framing must reach the origin unchanged
//     (naming them in Connection is a known trick to desynchronise a proxy and an origin)
//   Upgrade              the connection is closed after one response and nothing in
//                        between speaks the new protocol; clients tunnel WebSocket and
//                        h2c through CONNECT, which every mainstream client does via a proxy
//   Host                 replaced by the URL's authority, as RFC 9112 section 3.2.2 says
// and it keeps Transfer-Encoding and Trailer (they describe the body, relayed unchanged).
// It adds "Host", "Via: 1.x tether" (RFC 9110 section 7.6.3) and "Connection: close".
// Header lines otherwise keep their order, names and values (surrounding blanks trimmed).
//
// Line endings: CRLF, or a bare LF (tolerated, RFC 9112 section 2.2); the rewritten head
// always uses CRLF.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proxy/parse_result.h"
#include "proxy/proxy_wire.h"
#include "proxy/target.h"

namespace tether::proxy {

enum class HttpRequestKind {
  kConnect,  // CONNECT host:port: a tunnel
  kForward,  // an absolute-form http:// request: forward_head goes to the origin
};

struct HttpProxyRequest {
  HttpRequestKind kind = HttpRequestKind::kConnect;
  std::string method;   // as sent: "CONNECT", "GET", ...
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  Target target;        // port 80 when an http:// URL names none
  // kForward: the head to write to the origin, ending with the empty line. The bytes after
  // consumed() (the body, if any) follow it unchanged. Empty for kConnect.
  std::string forward_head;
  // Proxy-Authorization: nullopt when absent; an Error (step "proxy auth") when present but
  // not usable Basic credentials (another scheme, bad base64, no ':', sent twice); else the
  // credentials, for the caller to compare in constant time. A listener without auth
  // ignores the field, whatever it holds.
  std::optional<Result<Credentials>> credentials;
};

// Parses the request head at the front of `buffered`. Done: consumed() is the head's
// length; for CONNECT any bytes after it are the tunnel's first bytes. Refused: the reply
// is an error response (EncodeHttpError) with the reason in its body.
ParseResult<HttpProxyRequest> ParseHttpProxyRequest(std::string_view buffered);

// The value of a Proxy-Authorization field: "Basic base64(user:password)". The scheme is
// matched case-insensitively; the base64 must be canonical RFC 4648 (padded); the user is
// everything before the first ':' (RFC 7617: a user id has no ':'), the password the rest.
Result<Credentials> ParseBasicCredentials(std::string_view field_value);

// "HTTP/1.1 200 Connection established" and an empty line: no Content-Length and no
// Connection: close, because what follows is the tunnel (RFC 9110 section 9.3.6).
std::string EncodeHttpConnectEstablished();

// An error response: status line, a plain-text body "tether proxy: <message>\n" (the
// reason phrase when `message` is empty), Content-Length, Connection: close. A 407 also
// carries Proxy-Authenticate: Basic realm="tether". Close the connection after writing it.
std::string EncodeHttpError(int status, std::string_view message);

// "Bad Gateway" for 502, ...; "Error" for a status this proxy never sends.
std::string_view HttpReasonPhrase(int status);

}  // namespace tether::proxy
