// The head is re-split from the start on every call (the parser keeps no state). That is at
// most kHttpMaxHeadBytes scanned per read, which is nothing next to the read itself, and it
// keeps need-more / done / refused a function of the bytes alone.
//
// Every line is checked as soon as its LF arrives, so a client sending garbage gets its 400
// at the first bad line rather than after 16 KiB or a timeout.
#include "proxy/http_proxy.h"

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/text.h"

namespace tether::proxy {
namespace {

constexpr std::string_view kAuthStep = "proxy auth";
constexpr std::string_view kHttpScheme = "http://";
constexpr std::string_view kHttpsScheme = "https://";
// The longest target quoted in a message: enough to recognise it, not to echo a 16 KiB URL.
constexpr size_t kQuoteChars = 100;

struct Header {
  std::string_view name;
  std::string_view value;  // blanks trimmed
};

struct RequestLine {
  std::string_view method;
  std::string_view target;
  std::string_view version;
};

ParseResult<HttpProxyRequest> Refuse(int status, std::string reason) {
  std::string reply = EncodeHttpError(status, reason);
  return ParseResult<HttpProxyRequest>::Refused(
      Refusal{"HTTP request: " + std::move(reason), status, std::move(reply)});
}

std::string Quote(std::string_view s) { return "\"" + Printable(s, kQuoteChars) + "\""; }

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

bool IsToken(std::string_view s) { return IsHttpToken(s); }

bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

// A host name in a URL or CONNECT target: letters, digits and "-._~" (RFC 3986 unreserved).
// Stricter than the URI grammar's reg-name on purpose: percent-encoding and sub-delims never
// appear in a name that resolves, and refusing them keeps odd bytes out of logs.
bool IsHostName(std::string_view s) {
  if (s.empty() || s.size() > kHttpMaxHostBytes) return false;
  for (char c : s) {
    if (!IsAlnum(c) && c != '-' && c != '.' && c != '_' && c != '~') return false;
  }
  return true;
}

// "1"-"65535"; an empty text is the caller's business.
bool ParsePort(std::string_view s, uint16_t& port) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t value = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

// host[:port] or [v6][:port]. Without a port: `default_port`, or an error when it is 0.
// The error is a message for the 400's body.
Result<Target> ParseAuthority(std::string_view text, uint16_t default_port) {
  Target target;
  std::string_view port_text;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return MakeError("", "unbalanced '[' in " + Quote(text));
    const std::string_view inner = text.substr(1, close - 1);
    if (ClassifyHost(inner) != HostKind::kIpv6) {
      return MakeError("", Quote(inner) + " in brackets is not an IPv6 address");
    }
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return MakeError("", "']' must be followed by ':port'");
      port_text = rest.substr(1);
      has_port = true;
    }
    target.host = std::string(inner);
    target.kind = HostKind::kIpv6;
  } else {
    const size_t colon = text.find(':');
    std::string_view host = text.substr(0, colon);
    if (colon != std::string_view::npos) {
      if (text.find(':', colon + 1) != std::string_view::npos) {
        return MakeError(
            "", "too many ':' in " + Quote(text) + " (IPv6 addresses go in brackets: [::1]:443)");
      }
      port_text = text.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return MakeError("", "no host in " + Quote(text));
    if (!IsHostName(host)) return MakeError("", "host " + Quote(host) + " is not a host name");
    target.host = std::string(host);
    target.kind = ClassifyHost(host);
  }
  if (!has_port || port_text.empty()) {
    // RFC 3986 allows "host:" with an empty port, meaning the scheme's default.
    if (default_port == 0) return MakeError("", "no port in " + Quote(text));
    target.port = default_port;
  } else if (!ParsePort(port_text, target.port)) {
    return MakeError("", "port " + Quote(port_text) + " is not a number in 1-65535");
  }
  return target;
}

// Checks the request line; the error is the 400's (or 505's) message.
Result<RequestLine> ParseRequestLine(std::string_view line, int& status) {
  status = kHttpBadRequest;
  for (char c : line) {
    if (IsControl(c)) return MakeError("", "control byte in the request line");
  }
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return MakeError("", "request line " + Quote(line) + " is not METHOD TARGET HTTP/1.1");
  }
  RequestLine r{line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1), line.substr(sp2 + 1)};
  if (!IsToken(r.method)) return MakeError("", "method " + Quote(r.method) + " is not a token");
  if (r.target.empty()) return MakeError("", "empty request target");
  for (char c : r.target) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      return MakeError("", "non-ASCII byte in the request target (percent-encode it)");
    }
  }
  const std::string_view v = r.version;
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !IsDigit(v[5]) || v[6] != '.' ||
      !IsDigit(v[7])) {
    return MakeError("", "version " + Quote(v) + " is not HTTP/1.1");
  }
  if (v != "HTTP/1.1" && v != "HTTP/1.0") {
    status = kHttpVersionNotSupported;
    return MakeError("", Printable(v) + " is not supported (HTTP/1.0 and HTTP/1.1 are)");
  }
  return r;
}

Result<Header> ParseHeaderLine(std::string_view line) {
  if (IsBlank(line.front())) {
    return MakeError("", "obsolete line folding (a header line starting with a blank)");
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    return MakeError("", "header line " + Quote(line) + " has no ':'");
  }
  Header h{line.substr(0, colon), TrimBlanks(line.substr(colon + 1))};
  if (!IsToken(h.name)) return MakeError("", "header name " + Quote(h.name) + " is not a token");
  for (char c : h.value) {
    if (IsControl(c) && c != '\t') {
      return MakeError("", "control byte in header " + Printable(h.name));
    }
  }
  return h;
}

// The values of a comma-separated list field, lower-cased, blanks trimmed, empties skipped.
void AddListTokens(std::string_view value, std::vector<std::string>& out) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    const std::string_view item = TrimBlanks(value.substr(0, comma));
    if (!item.empty()) {
      std::string lower(item);
      for (char& c : lower) c = Lower(c);
      out.push_back(std::move(lower));
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool IsHopByHop(std::string_view name) {
  static constexpr std::string_view kHopByHop[] = {
      "connection", "proxy-connection",   "keep-alive", "proxy-authorization",
      "te",         "proxy-authenticate", "upgrade",    "host",
  };
  for (std::string_view h : kHopByHop) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  return false;
}

// The body is relayed unchanged, so these must reach the origin even when Connection
// names them.
bool IsFraming(std::string_view name) {
  return EqualsIgnoreCase(name, "content-length") || EqualsIgnoreCase(name, "transfer-encoding");
}

bool NamedIn(std::string_view name, const std::vector<std::string>& tokens) {
  for (const std::string& t : tokens) {
    if (EqualsIgnoreCase(name, t)) return true;
  }
  return false;
}

// Refuses what the origin might frame differently from the proxy's reading: a body that
// is both chunked and sized (RFC 9112 section 6.1 lets a server refuse it), or sizes that
// disagree. Returns the message, or empty when the framing is clear.
std::string CheckFraming(const std::vector<Header>& headers) {
  bool has_length = false;
  bool has_encoding = false;
  std::string_view length;
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, "transfer-encoding")) has_encoding = true;
    if (!EqualsIgnoreCase(h.name, "content-length")) continue;
    if (h.value.empty() || h.value.size() > 18) {
      return "Content-Length " + Quote(h.value) + " is not a length";
    }
    for (char c : h.value) {
      if (!IsDigit(c)) return "Content-Length " + Quote(h.value) + " is not a length";
    }
    if (has_length && h.value != length) return "Content-Length given twice, differently";
    has_length = true;
    length = h.value;
  }
  if (has_length && has_encoding) return "both Content-Length and Transfer-Encoding";
  return {};
}

// The request target of an absolute-form request, rewritten: the origin-form path and the
// target. The error is the 400's message.
Result<std::pair<Target, std::string>> SplitAbsoluteUrl(std::string_view url) {
  if (StartsWithIgnoreCase(url, kHttpsScheme)) {
    return MakeError("",
                     "https:// URLs are not proxied as requests; a client sends CONNECT "
                     "host:443 for them");
  }
  if (url.front() == '/' || url == "*") {
    return MakeError("", "not a proxy request: target " + Quote(url) +
                             " names no host (use an absolute http:// URL or CONNECT)");
  }
  if (!StartsWithIgnoreCase(url, kHttpScheme)) {
    return MakeError("", "target " + Quote(url) + " is not an http:// URL");
  }
  std::string_view rest = url.substr(kHttpScheme.size());
  const size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  std::string_view path =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  // A fragment is for the client only (RFC 9110 section 4.2.5); the origin never sees one.
  path = path.substr(0, path.find('#'));
  if (authority.find('@') != std::string_view::npos) {
    return MakeError("", "user info in the URL is not supported (use Proxy-Authorization)");
  }
  auto target = ParseAuthority(authority, kHttpDefaultPort);
  if (!target) return target.take_error();
  std::string origin_form;
  if (path.empty() || path.front() == '?') origin_form = "/";
  origin_form += path;
  return std::make_pair(std::move(*target), std::move(origin_form));
}

std::string HostFieldValue(const Target& t) {
  std::string host = t.kind == HostKind::kIpv6 ? "[" + t.host + "]" : t.host;
  if (t.port != kHttpDefaultPort) host += ":" + std::to_string(t.port);
  return host;
}

std::string BuildForwardHead(const RequestLine& line, const std::vector<Header>& headers,
                             const Target& target, std::string_view origin_form) {
  std::vector<std::string> connection_tokens;
  for (const Header& h : headers) {
    if (EqualsIgnoreCase(h.name, "connection")) AddListTokens(h.value, connection_tokens);
  }
  std::string out;
  out.append(line.method).append(" ").append(origin_form).append(" ").append(line.version);
  out.append("\r\nHost: ").append(HostFieldValue(target)).append("\r\n");
  for (const Header& h : headers) {
    if (IsHopByHop(h.name)) continue;
    if (!IsFraming(h.name) && NamedIn(h.name, connection_tokens)) continue;
    out.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  // "HTTP/1.1" -> "1.1": the protocol version as received, RFC 9110 section 7.6.3.
  out.append("Via: ").append(line.version.substr(5)).append(" tether\r\n");
  out.append("Connection: close\r\n\r\n");
  return out;
}

std::optional<Result<Credentials>> ExtractCredentials(const std::vector<Header>& headers) {
  const Header* found = nullptr;
  for (const Header& h : headers) {
    if (!EqualsIgnoreCase(h.name, "proxy-authorization")) continue;
    if (found != nullptr) {
      return Result<Credentials>(
          MakeError(std::string(kAuthStep), "Proxy-Authorization sent more than once"));
    }
    found = &h;
  }
  if (found == nullptr) return std::nullopt;
  return ParseBasicCredentials(found->value);
}

// The request line and what it asks for, checked as soon as the line is complete.
struct RequestStart {
  RequestLine line;
  HttpRequestKind kind = HttpRequestKind::kConnect;
  Target target;
  std::string origin_form;  // kForward: the path and query for the origin
};

Result<RequestStart> ParseRequestStart(std::string_view text, int& status) {
  auto line = ParseRequestLine(text, status);
  if (!line) return line.take_error();
  status = kHttpBadRequest;
  RequestStart start;
  start.line = *line;
  if (line->method == "CONNECT") {
    if (line->target.find('/') != std::string_view::npos) {
      return MakeError("", "CONNECT takes host:port, not a URL: " + Quote(line->target));
    }
    // No default port: a tunnel to "host" alone means nothing.
    auto target = ParseAuthority(line->target, 0);
    if (!target) return MakeError("", "CONNECT takes host:port: " + target.error().message);
    start.kind = HttpRequestKind::kConnect;
    start.target = std::move(*target);
    return start;
  }
  auto split = SplitAbsoluteUrl(line->target);
  if (!split) return split.take_error();
  start.kind = HttpRequestKind::kForward;
  start.target = std::move(split->first);
  start.origin_form = std::move(split->second);
  return start;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// RFC 4648 section 4, padded. Strict: a length that is not a multiple of 4, a character
// outside the alphabet, or '=' anywhere but the last one or two places fails.
std::optional<std::string> DecodeBase64(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    int v[4];
    int pad = 0;
    for (size_t j = 0; j < 4; ++j) {
      const char c = in[i + j];
      if (c == '=' && last && j >= 2) {
        v[j] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // "a=b=" or "ab=c"
      v[j] = Base64Value(c);
      if (v[j] < 0) return std::nullopt;
    }
    const uint32_t bits = (static_cast<uint32_t>(v[0]) << 18) |
                          (static_cast<uint32_t>(v[1]) << 12) | (static_cast<uint32_t>(v[2]) << 6) |
                          static_cast<uint32_t>(v[3]);
    out += static_cast<char>((bits >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((bits >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(bits & 0xff);
  }
  return out;
}

}  // namespace

ParseResult<HttpProxyRequest> ParseHttpProxyRequest(std::string_view in) {
  std::optional<RequestStart> start;
  std::vector<Header> headers;
  size_t head_bytes = 0;  // 0 until the empty line is found
  size_t pos = 0;
  while (true) {
    const size_t lf = in.find('\n', pos);
    if (lf == std::string_view::npos) break;
    if (lf + 1 > kHttpMaxHeadBytes) {
      return Refuse(kHttpHeadTooLarge,
                    "request head larger than " + std::to_string(kHttpMaxHeadBytes) + " bytes");
    }
    std::string_view line = in.substr(pos, lf - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = lf + 1;
    if (line.empty()) {
      if (!start) return Refuse(kHttpBadRequest, "empty request line");
      head_bytes = pos;
      break;
    }
    if (!start) {
      int status = kHttpBadRequest;
      auto parsed = ParseRequestStart(line, status);
      if (!parsed) return Refuse(status, parsed.error().message);
      start = std::move(*parsed);
      continue;
    }
    if (headers.size() == kHttpMaxHeaderCount) {
      return Refuse(kHttpHeadTooLarge,
                    "more than " + std::to_string(kHttpMaxHeaderCount) + " header lines");
    }
    auto header = ParseHeaderLine(line);
    if (!header) return Refuse(kHttpBadRequest, header.error().message);
    headers.push_back(*header);
  }
  if (head_bytes == 0) {
    // The empty line's LF would land at kHttpMaxHeadBytes or later.
    if (in.size() >= kHttpMaxHeadBytes) {
      return Refuse(kHttpHeadTooLarge,
                    "request head larger than " + std::to_string(kHttpMaxHeadBytes) + " bytes");
    }
    return ParseResult<HttpProxyRequest>::NeedMore();
  }

  HttpProxyRequest request;
  request.kind = start->kind;
  request.method = std::string(start->line.method);
  request.version = std::string(start->line.version);
  request.target = std::move(start->target);
  if (request.kind == HttpRequestKind::kForward) {
    if (std::string problem = CheckFraming(headers); !problem.empty()) {
      return Refuse(kHttpBadRequest, problem);
    }
    request.forward_head =
        BuildForwardHead(start->line, headers, request.target, start->origin_form);
  }
  request.credentials = ExtractCredentials(headers);
  return ParseResult<HttpProxyRequest>::Done(head_bytes, std::move(request));
}

Result<Credentials> ParseBasicCredentials(std::string_view field_value) {
  const std::string step(kAuthStep);
  const std::string_view value = TrimBlanks(field_value);
  const size_t blank = value.find_first_of(" \t");
  const std::string_view scheme = value.substr(0, blank);
  if (!EqualsIgnoreCase(scheme, "Basic")) {
    return MakeError(
        step, "Proxy-Authorization scheme " + Quote(scheme) + " is not supported (Basic only)");
  }
  const std::string_view token =
      blank == std::string_view::npos ? std::string_view() : TrimBlanks(value.substr(blank));
  if (token.empty()) return MakeError(step, "Proxy-Authorization Basic has no credentials");
  auto decoded = DecodeBase64(token);
  if (!decoded) return MakeError(step, "Proxy-Authorization Basic credentials are not base64");
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) {
    return MakeError(step, "Proxy-Authorization Basic credentials have no ':' after the user");
  }
  return Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
}

std::string EncodeHttpConnectEstablished() { return "HTTP/1.1 200 Connection established\r\n\r\n"; }

std::string EncodeHttpError(int status, std::string_view message) {
  std::string body = "tether proxy: ";
  body.append(message.empty() ? HttpReasonPhrase(status) : message).append("\n");
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(HttpReasonPhrase(status)).append("\r\n");
  if (status == kHttpProxyAuthRequired) {
    out.append("Proxy-Authenticate: Basic realm=\"").append(kHttpAuthRealm).append("\"\r\n");
  }
  out.append("Content-Type: text/plain; charset=utf-8\r\n");
  out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  out.append("Connection: close\r\n\r\n");
  out.append(body);
  return out;
}

std::string_view HttpReasonPhrase(int status) {
  switch (status) {
    case kHttpOk:
      return "OK";
    case kHttpBadRequest:
      return "Bad Request";
    case kHttpForbidden:
      return "Forbidden";
    case kHttpProxyAuthRequired:
      return "Proxy Authentication Required";
    case kHttpHeadTooLarge:
      return "Request Header Fields Too Large";
    case kHttpBadGateway:
      return "Bad Gateway";
    case kHttpServiceUnavailable:
      return "Service Unavailable";
    case kHttpGatewayTimeout:
      return "Gateway Timeout";
    case kHttpVersionNotSupported:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

}  // namespace tether::proxy
