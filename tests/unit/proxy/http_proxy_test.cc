#include "proxy/http_proxy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "feed.h"

namespace tether::proxy {
namespace {

Target Tcp(std::string host, uint16_t port, HostKind kind) {
  return Target{std::move(host), port, kind};
}

// The buffered length at which the n-th line (1-based) is complete.
size_t AfterLine(std::string_view message, int n) {
  size_t pos = 0;
  for (int i = 0; i < n; ++i) pos = message.find('\n', pos) + 1;
  return pos;
}

// --- CONNECT ---------------------------------------------------------------------------------

struct ConnectCase {
  std::string head;
  Target want;
  std::string version;
};

const std::vector<ConnectCase> kConnect = {
    {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
     Tcp("example.com", 443, HostKind::kName), "HTTP/1.1"},
    {"CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\nUser-Agent: pip/24.0\r\n"
     "Proxy-Connection: Keep-Alive\r\n\r\n",
     Tcp("pypi.org", 443, HostKind::kName), "HTTP/1.1"},
    {"CONNECT 10.0.0.1:22 HTTP/1.0\r\n\r\n", Tcp("10.0.0.1", 22, HostKind::kIpv4), "HTTP/1.0"},
    {"CONNECT [::1]:8443 HTTP/1.1\r\n\r\n", Tcp("::1", 8443, HostKind::kIpv6), "HTTP/1.1"},
    {"CONNECT [2001:db8::1]:443 HTTP/1.1\n\n", Tcp("2001:db8::1", 443, HostKind::kIpv6),
     "HTTP/1.1"},
    {"CONNECT a.b-c_d.example:1 HTTP/1.1\nHost: x\r\n\n",
     Tcp("a.b-c_d.example", 1, HostKind::kName), "HTTP/1.1"},
    {"CONNECT h:65535 HTTP/1.1\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
     Tcp("h", 65535, HostKind::kName), "HTTP/1.1"},
};

TEST(HttpProxyParser, ParsesEveryConnectOnlyOnItsLastByte) {
  for (const ConnectCase& c : kConnect) {
    auto got = FeedBytewise(ParseHttpProxyRequest, c.head);
    ASSERT_TRUE(got.done()) << c.head;
    EXPECT_EQ(got.consumed(), c.head.size());
    const HttpProxyRequest& r = got.value();
    EXPECT_EQ(r.kind, HttpRequestKind::kConnect);
    EXPECT_EQ(r.method, "CONNECT");
    EXPECT_EQ(r.version, c.version);
    EXPECT_EQ(r.target, c.want);
    EXPECT_EQ(r.forward_head, "");
    EXPECT_FALSE(r.credentials.has_value());
  }
}

TEST(HttpProxyParser, LeavesTheTunnelsFirstBytesInTheBuffer) {
  for (const ConnectCase& c : kConnect) {
    auto got = FeedWithTrailer(ParseHttpProxyRequest, c.head, "\x16\x03\x01 client hello");
    ASSERT_TRUE(got.done());
    EXPECT_EQ(got.value().target, c.want);
  }
}

// --- Absolute-form rewriting -----------------------------------------------------------------

struct ForwardCase {
  const char* what;
  std::string head;
  Target want;
  std::string forward_head;
};

const std::vector<ForwardCase> kForward = {
    {"a curl GET",
     "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5\r\n"
     "Accept: */*\r\nProxy-Connection: Keep-Alive\r\n\r\n",
     Tcp("example.com", 80, HostKind::kName),
     "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5\r\nAccept: */*\r\n"
     "Via: 1.1 tether\r\nConnection: close\r\n\r\n"},
    {"port, path and query, HTTP/1.0, bare LF",
     "GET http://example.com:8080/a/b?x=1&y=2 HTTP/1.0\n\n",
     Tcp("example.com", 8080, HostKind::kName),
     "GET /a/b?x=1&y=2 HTTP/1.0\r\nHost: example.com:8080\r\nVia: 1.0 tether\r\n"
     "Connection: close\r\n\r\n"},
    {"no path", "GET http://example.com HTTP/1.1\r\n\r\n", Tcp("example.com", 80, HostKind::kName),
     "GET / HTTP/1.1\r\nHost: example.com\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n"},
    {"query without path", "GET http://example.com?q=1 HTTP/1.1\r\n\r\n",
     Tcp("example.com", 80, HostKind::kName),
     "GET /?q=1 HTTP/1.1\r\nHost: example.com\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n"},
    {"IPv6 in brackets", "GET http://[::1]:8000/x HTTP/1.1\r\n\r\n",
     Tcp("::1", 8000, HostKind::kIpv6),
     "GET /x HTTP/1.1\r\nHost: [::1]:8000\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n"},
    {"IPv4, default port written out", "GET http://10.1.1.1:80/ HTTP/1.1\r\n\r\n",
     Tcp("10.1.1.1", 80, HostKind::kIpv4),
     "GET / HTTP/1.1\r\nHost: 10.1.1.1\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n"},
    {"scheme in capitals, empty port, fragment", "HEAD HTTP://Example.COM:/#frag HTTP/1.1\r\n\r\n",
     Tcp("Example.COM", 80, HostKind::kName),
     "HEAD / HTTP/1.1\r\nHost: Example.COM\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n"},
    {"hop-by-hop headers go, the rest stays in order",
     "POST http://h/p HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
     "Connection: keep-alive, X-Secret, Upgrade\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n"
     "TE: trailers\r\nUpgrade: websocket\r\nProxy-Authorization: Basic dTpw\r\n"
     "proxy-authenticate: x\r\nContent-Length: 5\r\nTrailer: Expires\r\nX-Other: 2\r\n\r\n",
     Tcp("h", 80, HostKind::kName),
     "POST /p HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
     "Trailer: Expires\r\nX-Other: 2\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n"},
    {"Connection cannot remove the body's framing",
     "POST http://h/ HTTP/1.1\r\nConnection: Content-Length, transfer-encoding, x-a\r\n"
     "Content-Length: 3\r\nX-A: gone\r\n\r\n",
     Tcp("h", 80, HostKind::kName),
     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nVia: 1.1 tether\r\n"
     "Connection: close\r\n\r\n"},
    {"chunked body keeps Transfer-Encoding",
     "POST http://h/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
     Tcp("h", 80, HostKind::kName),
     "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nVia: 1.1 tether\r\n"
     "Connection: close\r\n\r\n"},
    {"a different Host is replaced by the URL's",
     "GET http://good.example/ HTTP/1.1\r\nHost: evil.example\r\nhost: other\r\n\r\n",
     Tcp("good.example", 80, HostKind::kName),
     "GET / HTTP/1.1\r\nHost: good.example\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n"},
    {"values are trimmed, names kept as sent, an earlier Via kept",
     "GET http://h/ HTTP/1.1\r\naccept:   text/html  \r\nX-T:\ta\tb\t\r\nVia: 1.1 squid\r\n"
     "Content-Length: 0\r\nContent-Length: 0\r\n\r\n",
     Tcp("h", 80, HostKind::kName),
     "GET / HTTP/1.1\r\nHost: h\r\naccept: text/html\r\nX-T: a\tb\r\nVia: 1.1 squid\r\n"
     "Content-Length: 0\r\nContent-Length: 0\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n"},
    {"any method token", "PROPFIND http://dav.example/f HTTP/1.1\r\n\r\n",
     Tcp("dav.example", 80, HostKind::kName),
     "PROPFIND /f HTTP/1.1\r\nHost: dav.example\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n"},
};

TEST(HttpProxyParser, RewritesAbsoluteFormToOriginForm) {
  for (const ForwardCase& c : kForward) {
    SCOPED_TRACE(c.what);
    auto got = FeedBytewise(ParseHttpProxyRequest, c.head);
    ASSERT_TRUE(got.done());
    EXPECT_EQ(got.consumed(), c.head.size());
    const HttpProxyRequest& r = got.value();
    EXPECT_EQ(r.kind, HttpRequestKind::kForward);
    EXPECT_EQ(r.target, c.want);
    EXPECT_EQ(r.forward_head, c.forward_head);
  }
}

TEST(HttpProxyParser, LeavesTheBodyInTheBuffer) {
  for (const ForwardCase& c : kForward) {
    SCOPED_TRACE(c.what);
    auto got = FeedWithTrailer(ParseHttpProxyRequest, c.head, "hello\r\n\r\nGET / HTTP/1.1");
    ASSERT_TRUE(got.done());
    EXPECT_EQ(got.value().forward_head, c.forward_head);
  }
}

TEST(HttpProxyParser, ForwardedHeadParsesAsAnOriginFormRequest) {
  // What goes upstream is itself a well-formed head: origin-form, so a proxy parser that
  // sees it refuses it as "not a proxy request", and only for that reason.
  for (const ForwardCase& c : kForward) {
    auto got = ParseHttpProxyRequest(c.head);
    ASSERT_TRUE(got.done());
    auto again = ParseHttpProxyRequest(got.value().forward_head);
    ASSERT_TRUE(again.refused()) << c.what;
    EXPECT_NE(again.refusal().reason.find("names no host"), std::string::npos)
        << again.refusal().reason;
  }
}

// --- Refused requests ------------------------------------------------------------------------

struct RefusedCase {
  std::string head;
  int refused_after_lines;  // the request is known bad once this many lines are complete
  int status;
  const char* reason;
};

const std::vector<RefusedCase> kRefused = {
    // CONNECT targets.
    {"CONNECT example.com HTTP/1.1\r\n\r\n", 1, 400, "no port in \"example.com\""},
    {"CONNECT example.com: HTTP/1.1\r\n\r\n", 1, 400, "no port"},
    {"CONNECT example.com:0 HTTP/1.1\r\n\r\n", 1, 400, "port \"0\" is not a number in 1-65535"},
    {"CONNECT example.com:65536 HTTP/1.1\r\n\r\n", 1, 400, "port \"65536\""},
    {"CONNECT example.com:https HTTP/1.1\r\n\r\n", 1, 400, "port \"https\""},
    {"CONNECT example.com:443443 HTTP/1.1\r\n\r\n", 1, 400, "port \"443443\""},
    {"CONNECT ::1:443 HTTP/1.1\r\n\r\n", 1, 400, "IPv6 addresses go in brackets"},
    {"CONNECT [::1:443 HTTP/1.1\r\n\r\n", 1, 400, "unbalanced '['"},
    {"CONNECT [example.com]:443 HTTP/1.1\r\n\r\n", 1, 400, "is not an IPv6 address"},
    {"CONNECT [::1]443 HTTP/1.1\r\n\r\n", 1, 400, "']' must be followed by ':port'"},
    {"CONNECT [::1] HTTP/1.1\r\n\r\n", 1, 400, "no port"},
    {"CONNECT :443 HTTP/1.1\r\n\r\n", 1, 400, "no host"},
    {"CONNECT ex%41mple.com:443 HTTP/1.1\r\n\r\n", 1, 400, "is not a host name"},
    {"CONNECT http://example.com:443/ HTTP/1.1\r\n\r\n", 1, 400, "not a URL"},
    // Absolute-form targets.
    {"GET https://example.com/ HTTP/1.1\r\n\r\n", 1, 400, "CONNECT host:443"},
    {"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n", 1, 400, "names no host"},
    {"OPTIONS * HTTP/1.1\r\n\r\n", 1, 400, "names no host"},
    {"GET ftp://example.com/ HTTP/1.1\r\n\r\n", 1, 400, "is not an http:// URL"},
    {"GET example.com:80 HTTP/1.1\r\n\r\n", 1, 400, "is not an http:// URL"},
    {"GET http://user:pw@example.com/ HTTP/1.1\r\n\r\n", 1, 400, "user info in the URL"},
    {"GET http:///path HTTP/1.1\r\n\r\n", 1, 400, "no host"},
    {"GET http://example.com:99999/ HTTP/1.1\r\n\r\n", 1, 400, "port \"99999\""},
    {"GET http://exa mple.com/ HTTP/1.1\r\n\r\n", 1, 400, "is not METHOD TARGET HTTP/1.1"},
    // Request lines.
    {"\r\nGET http://h/ HTTP/1.1\r\n\r\n", 1, 400, "empty request line"},
    {"GET\r\n\r\n", 1, 400, "is not METHOD TARGET HTTP/1.1"},
    {"GET  http://h/ HTTP/1.1\r\n\r\n", 1, 400, "is not METHOD TARGET HTTP/1.1"},
    {"GET http://h/ HTTP/1.1 x\r\n\r\n", 1, 400, "is not METHOD TARGET HTTP/1.1"},
    {"GET http://h/ HTTP/1.1 \r\n\r\n", 1, 400, "is not METHOD TARGET HTTP/1.1"},
    {"G(T http://h/ HTTP/1.1\r\n\r\n", 1, 400, "method \"G(T\" is not a token"},
    {"GET http://h/ HTTP/2.0\r\n\r\n", 1, 505, "HTTP/2.0 is not supported"},
    {"GET http://h/ HTTP/0.9\r\n\r\n", 1, 505, "HTTP/0.9 is not supported"},
    {"GET http://h/ HTTP/1\r\n\r\n", 1, 400, "version \"HTTP/1\""},
    {"GET http://h/ http/1.1\r\n\r\n", 1, 400, "version \"http/1.1\""},
    {"GET http://h/ HTTP/1.10\r\n\r\n", 1, 400, "version"},
    {"GET http://h/\x01 HTTP/1.1\r\n\r\n", 1, 400, "control byte in the request line"},
    {"GET http://h/\r HTTP/1.1\r\n\r\n", 1, 400, "control byte in the request line"},
    {"GET http://h/caf\xc3\xa9 HTTP/1.1\r\n\r\n", 1, 400, "non-ASCII byte"},
    // Header lines.
    {"GET http://h/ HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n", 3, 400, "obsolete line folding"},
    {"GET http://h/ HTTP/1.1\r\n\tfolded\r\n\r\n", 2, 400, "obsolete line folding"},
    {"GET http://h/ HTTP/1.1\r\nNoColon\r\n\r\n", 2, 400, "header line \"NoColon\" has no ':'"},
    {"GET http://h/ HTTP/1.1\r\nBad Name: x\r\n\r\n", 2, 400, "header name \"Bad Name\""},
    {"GET http://h/ HTTP/1.1\r\nHost : h\r\n\r\n", 2, 400, "header name \"Host \""},
    {"GET http://h/ HTTP/1.1\r\n: x\r\n\r\n", 2, 400, "header name \"\""},
    {std::string("GET http://h/ HTTP/1.1\r\nX: a\0b\r\n\r\n", 34), 2, 400,
     "control byte in header X"},
    {"GET http://h/ HTTP/1.1\r\nX: a\rb\r\n\r\n", 2, 400, "control byte in header X"},
    {"GET http://h/ HTTP/1.1\r\nX: a\r\r\n\r\n", 2, 400, "control byte in header X"},
    // Body framing (checked once the head is whole).
    {"POST http://h/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 400,
     "both Content-Length and Transfer-Encoding"},
    {"POST http://h/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, 400,
     "Content-Length given twice, differently"},
    {"POST http://h/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 0, 400, "is not a length"},
    {"POST http://h/ HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", 0, 400, "is not a length"},
    {"POST http://h/ HTTP/1.1\r\nContent-Length:\r\n\r\n", 0, 400, "is not a length"},
    {"POST http://h/ HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n", 0, 400,
     "is not a length"},
};

TEST(HttpProxyParser, RefusesEachBadRequestAtItsFirstBadLineWithItsStatus) {
  for (const RefusedCase& c : kRefused) {
    SCOPED_TRACE(c.head);
    const size_t at =
        c.refused_after_lines == 0 ? c.head.size() : AfterLine(c.head, c.refused_after_lines);
    auto whole = ParseHttpProxyRequest(c.head);
    ASSERT_TRUE(whole.refused());
    ExpectRefusedFrom(ParseHttpProxyRequest, c.head, at, c.status, whole.refusal().reply, c.reason);
    // The reply is the matching error response, with the reason in its body.
    const std::string& reply = whole.refusal().reply;
    EXPECT_EQ(reply.rfind("HTTP/1.1 " + std::to_string(c.status) + " ", 0), 0u) << reply;
    EXPECT_NE(reply.find(c.reason), std::string::npos) << reply;
  }
}

TEST(HttpProxyParser, RefusesOriginFormWith400) {
  auto got = ParseHttpProxyRequest("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
  ASSERT_TRUE(got.refused());
  EXPECT_EQ(got.refusal().code, 400);
  EXPECT_EQ(got.refusal().reason,
            "HTTP request: not a proxy request: target \"/\" names no host (use an absolute "
            "http:// URL or CONNECT)");
}

TEST(HttpProxyParser, QuotesOnlyTheStartOfALongTarget) {
  const std::string head = "GET ftp://" + std::string(5000, 'a') + " HTTP/1.1\r\n\r\n";
  auto got = ParseHttpProxyRequest(head);
  ASSERT_TRUE(got.refused());
  EXPECT_LT(got.refusal().reason.size(), 200u);
  EXPECT_LT(got.refusal().reply.size(), 400u);
}

// --- Limits ----------------------------------------------------------------------------------

// A head of exactly `size` bytes: the request line, one padding header, the empty line.
std::string HeadOfSize(size_t size) {
  const std::string start = "GET http://h/ HTTP/1.1\r\nX-Pad: ";
  const std::string end = "\r\n\r\n";
  return start + std::string(size - start.size() - end.size(), 'p') + end;
}

std::string HeadWithHeaders(size_t count) {
  std::string head = "GET http://h/ HTTP/1.1\r\n";
  for (size_t i = 0; i < count; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
  return head + "\r\n";
}

TEST(HttpProxyParser, AcceptsAHeadOfExactlyTheLimit) {
  const std::string head = HeadOfSize(kHttpMaxHeadBytes);
  ASSERT_EQ(head.size(), kHttpMaxHeadBytes);
  auto got = ParseHttpProxyRequest(head);
  ASSERT_TRUE(got.done());
  EXPECT_EQ(got.consumed(), kHttpMaxHeadBytes);
  auto trailing = FeedWithTrailer(ParseHttpProxyRequest, head, "body");
  EXPECT_TRUE(trailing.done());
}

TEST(HttpProxyParser, RefusesAHeadOneBytePastTheLimitWith431) {
  const std::string head = HeadOfSize(kHttpMaxHeadBytes + 1);
  // Known too big once kHttpMaxHeadBytes bytes are in without the end of the head.
  ExpectRefusedFrom(ParseHttpProxyRequest, head, kHttpMaxHeadBytes, 431,
                    EncodeHttpError(431, "request head larger than 16384 bytes"),
                    "request head larger than 16384 bytes");
}

TEST(HttpProxyParser, RefusesAnEndlessLineWith431) {
  const std::string line = "GET http://h/" + std::string(kHttpMaxHeadBytes, 'a');
  ExpectRefusedFrom(ParseHttpProxyRequest, line, kHttpMaxHeadBytes, 431,
                    EncodeHttpError(431, "request head larger than 16384 bytes"), "larger than");
}

TEST(HttpProxyParser, AcceptsExactlyTheMaximumNumberOfHeaders) {
  auto got = ParseHttpProxyRequest(HeadWithHeaders(kHttpMaxHeaderCount));
  ASSERT_TRUE(got.done());
  // Every header survives the rewrite: 100 of them plus Host, Via and Connection.
  const std::string& fwd = got.value().forward_head;
  EXPECT_NE(fwd.find("X-99: v\r\n"), std::string::npos);
}

TEST(HttpProxyParser, RefusesOneHeaderTooManyWith431) {
  const std::string head = HeadWithHeaders(kHttpMaxHeaderCount + 1);
  const size_t at = AfterLine(head, static_cast<int>(kHttpMaxHeaderCount) + 2);
  ExpectRefusedFrom(ParseHttpProxyRequest, head, at, 431,
                    EncodeHttpError(431, "more than 100 header lines"),
                    "more than 100 header lines");
}

// --- Proxy-Authorization ---------------------------------------------------------------------

struct CredentialsCase {
  const char* value;
  Credentials want;
};

const std::vector<CredentialsCase> kGoodCredentials = {
    {"Basic dXNlcjpwYXNz", {"user", "pass"}},      // user:pass
    {"basic   dXNlcjpwYXNz  ", {"user", "pass"}},  // scheme case, blanks
    {"BASIC\tdXNlcjpwYXNz", {"user", "pass"}},     // a tab separates too
    {"Basic OnBhc3M=", {"", "pass"}},              // :pass
    {"Basic dXNlcjo=", {"user", ""}},              // user:
    {"Basic dTpwOnE=", {"u", "p:q"}},              // u:p:q, the password keeps ':'
    {"Basic YWxhZGRpbjpvcGVuc2VzYW1l", {"aladdin", "opensesame"}},
    {"Basic w6k6w6k=", {"\xc3\xa9", "\xc3\xa9"}},  // UTF-8 passes untouched
};

TEST(HttpBasicCredentials, DecodesGoodCredentials) {
  for (const CredentialsCase& c : kGoodCredentials) {
    auto got = ParseBasicCredentials(c.value);
    ASSERT_TRUE(got.ok()) << c.value << ": " << got.error().ToString();
    EXPECT_EQ(*got, c.want) << c.value;
  }
}

struct BadCredentialsCase {
  const char* value;
  const char* reason;
};

const std::vector<BadCredentialsCase> kBadCredentials = {
    {"Basic dXNlcjpwYXNz=", "not base64"},        // length not a multiple of 4
    {"Basic dXNlcjpwYXN", "not base64"},          // unpadded
    {"Basic dXNl*jpwYXNz", "not base64"},         // outside the alphabet
    {"Basic dXNlcjpw YXNz", "not base64"},        // a blank inside
    {"Basic dX=lcjpwYXNz", "not base64"},         // '=' in the middle
    {"Basic dXNlcjp=YXNz", "not base64"},         // '=' in a group that is not the last
    {"Basic dXNlc=pw", "not base64"},             // "ab=c"
    {"Basic ====", "not base64"},                 // all padding
    {"Basic dXNlcjpwYX===", "not base64"},        // three '='
    {"Basic dXNlcg==", "no ':' after the user"},  // "user"
    {"Basic", "has no credentials"},
    {"Basic   ", "has no credentials"},
    {"Bearer abc.def", "scheme \"Bearer\" is not supported (Basic only)"},
    {"Digest username=\"u\"", "scheme \"Digest\""},
    {"", "scheme \"\""},
    {"Basicx dXNlcjpwYXNz", "scheme \"Basicx\""},
};

TEST(HttpBasicCredentials, RefusesMalformedCredentialsWithAReason) {
  for (const BadCredentialsCase& c : kBadCredentials) {
    auto got = ParseBasicCredentials(c.value);
    ASSERT_FALSE(got.ok()) << c.value;
    EXPECT_EQ(got.error().step, "proxy auth");
    EXPECT_NE(got.error().message.find(c.reason), std::string::npos)
        << c.value << ": " << got.error().message;
  }
}

TEST(HttpProxyParser, ExtractsCredentialsFromConnectAndStripsThemFromForwards) {
  auto connect = ParseHttpProxyRequest(
      "CONNECT h:443 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
  ASSERT_TRUE(connect.done());
  ASSERT_TRUE(connect.value().credentials.has_value());
  ASSERT_TRUE(connect.value().credentials->ok());
  EXPECT_EQ(**connect.value().credentials, (Credentials{"user", "pass"}));

  auto forward = ParseHttpProxyRequest(
      "GET http://h/ HTTP/1.1\r\nproxy-authorization: Basic dXNlcjpwYXNz\r\n\r\n");
  ASSERT_TRUE(forward.done());
  ASSERT_TRUE(forward.value().credentials.has_value());
  EXPECT_EQ(**forward.value().credentials, (Credentials{"user", "pass"}));
  EXPECT_EQ(forward.value().forward_head.find("dXNlcjpwYXNz"), std::string::npos);
  EXPECT_EQ(forward.value().forward_head.find("uthorization"), std::string::npos);
}

TEST(HttpProxyParser, ReportsUnusableCredentialsWithoutRefusingTheRequest) {
  // A listener without auth serves these; one with auth answers 407.
  for (const char* head : {
           "CONNECT h:443 HTTP/1.1\r\nProxy-Authorization: Basic !!!!\r\n\r\n",
           "CONNECT h:443 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcg==\r\n\r\n",
           "CONNECT h:443 HTTP/1.1\r\nProxy-Authorization: Negotiate abc\r\n\r\n",
           "CONNECT h:443 HTTP/1.1\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n"
           "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n",
       }) {
    auto got = ParseHttpProxyRequest(head);
    ASSERT_TRUE(got.done()) << head;
    ASSERT_TRUE(got.value().credentials.has_value()) << head;
    EXPECT_FALSE(got.value().credentials->ok()) << head;
  }
}

// --- Responses -------------------------------------------------------------------------------

TEST(HttpProxyResponses, ConnectEstablishedHasNoBodyAndKeepsTheConnection) {
  EXPECT_EQ(EncodeHttpConnectEstablished(), "HTTP/1.1 200 Connection established\r\n\r\n");
}

TEST(HttpProxyResponses, EncodesAnErrorExactly) {
  EXPECT_EQ(EncodeHttpError(400, "bad"),
            "HTTP/1.1 400 Bad Request\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 18\r\n"
            "Connection: close\r\n"
            "\r\n"
            "tether proxy: bad\n");
}

TEST(HttpProxyResponses, EveryErrorHasItsPhraseABodyOfItsLengthAndClose) {
  struct Case {
    int status;
    const char* phrase;
  };
  for (const Case& c : {Case{400, "Bad Request"}, Case{403, "Forbidden"},
                        Case{407, "Proxy Authentication Required"},
                        Case{431, "Request Header Fields Too Large"}, Case{502, "Bad Gateway"},
                        Case{504, "Gateway Timeout"}, Case{505, "HTTP Version Not Supported"}}) {
    for (const char* message : {"", "connect to example.com:443 failed: refused"}) {
      const std::string r = EncodeHttpError(c.status, message);
      SCOPED_TRACE(r);
      EXPECT_EQ(r.rfind("HTTP/1.1 " + std::to_string(c.status) + " " + c.phrase + "\r\n", 0), 0u);
      const size_t end = r.find("\r\n\r\n");
      ASSERT_NE(end, std::string::npos);
      const std::string head = r.substr(0, end + 2);
      const std::string body = r.substr(end + 4);
      EXPECT_NE(head.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"),
                std::string::npos);
      EXPECT_NE(head.find("\r\nConnection: close\r\n"), std::string::npos);
      EXPECT_NE(head.find("\r\nContent-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
      EXPECT_EQ(body, std::string("tether proxy: ") + (*message ? message : c.phrase) + "\n");
      const bool challenge =
          head.find("\r\nProxy-Authenticate: Basic realm=\"tether\"\r\n") != std::string::npos;
      EXPECT_EQ(challenge, c.status == 407);
    }
  }
}

TEST(HttpProxyResponses, AnUnknownStatusStillGetsAPhrase) {
  EXPECT_EQ(HttpReasonPhrase(418), "Error");
  EXPECT_EQ(EncodeHttpError(500, "").rfind("HTTP/1.1 500 Error\r\n", 0), 0u);
}

}  // namespace
}  // namespace tether::proxy
