#include "agent/http_request.h"

#include "common/text.h"

namespace tether::agent {
namespace {

bool IsToken(std::string_view s) { return IsHttpToken(s); }

// Printable ASCII, or any byte of 0x80 and up (obs-text); no controls, no DEL.
bool IsFieldChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

// A request target is visible ASCII, no spaces.
bool IsTargetChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u > 0x20 && u < 0x7f;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = Lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

HeadParse Error(int status, std::string reason) {
  HeadParse p;
  p.state = ParseState::kError;
  p.status = status;
  p.reason = std::move(reason);
  return p;
}

// The line starting at `at`, without its CRLF or LF; npos in `next` when it has no end yet.
std::string_view Line(std::string_view in, size_t at, size_t& next) {
  size_t lf = in.find('\n', at);
  if (lf == std::string_view::npos) {
    next = std::string_view::npos;
    return in.substr(at);
  }
  next = lf + 1;
  size_t end = lf > at && in[lf - 1] == '\r' ? lf - 1 : lf;
  return in.substr(at, end - at);
}

bool ParseRequestLine(std::string_view line, HttpRequest& r, std::string& why) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) {
    why = "malformed request line";
    return false;
  }
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    why = "malformed request line";
    return false;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method)) {
    why = "malformed method";
    return false;
  }
  if (target.empty() || target.front() != '/') {
    why = "the target must be a path";
    return false;
  }
  for (char c : target) {
    if (!IsTargetChar(c)) {
      why = "malformed target";
      return false;
    }
  }
  if (version == "HTTP/1.1") {
    r.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    r.minor_version = 0;
  } else {
    why = "not HTTP/1.0 or HTTP/1.1";
    return false;
  }
  r.method = std::string(method);
  r.target = std::string(target);
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  size_t hash = path.find('#');
  r.path = PercentDecode(path.substr(0, hash), false);
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    r.query = std::string(query.substr(0, query.find('#')));
  }
  return true;
}

bool ParseHeaderLine(std::string_view line, HttpRequest& r, std::string& why) {
  if (line.front() == ' ' || line.front() == '\t') {
    why = "folded header lines are not accepted";
    return false;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
    why = "malformed header line";
    return false;
  }
  std::string_view value = line.substr(colon + 1);
  for (char c : value) {
    if (!IsFieldChar(c)) {
      why = "control character in a header";
      return false;
    }
  }
  // Trim spaces and tabs only (common/text's Trim may take more).
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  return true;
}

}  // namespace

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

size_t HttpRequest::HeaderCount(std::string_view name) const {
  size_t n = 0;
  for (const auto& [k, v] : headers) n += EqualsIgnoreCase(k, name) ? 1 : 0;
  return n;
}

std::optional<std::string_view> HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string> HttpRequest::QueryParam(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t eq = pair.find('=');
    if (PercentDecode(pair.substr(0, eq), true) != name) continue;
    return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

bool HttpRequest::KeepAlive() const {
  bool close = false;
  bool keep = false;
  for (const auto& [k, v] : headers) {
    if (!EqualsIgnoreCase(k, "Connection")) continue;
    // A comma-separated list of options.
    std::string_view rest = v;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view option = Trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (EqualsIgnoreCase(option, "close")) close = true;
      if (EqualsIgnoreCase(option, "keep-alive")) keep = true;
    }
  }
  if (close) return false;
  return minor_version >= 1 || keep;
}

HeadParse ParseRequestHead(std::string_view input, size_t max_head_bytes) {
  HttpRequest r;
  size_t at = 0;
  // RFC 9112 section 2.2: empty lines before a request line are skipped (a client's stray
  // CRLF after a previous body); bounded by the head budget like anything else.
  while (at < input.size() && (input[at] == '\n' || input[at] == '\r')) {
    if (input[at] == '\r' && (at + 1 >= input.size() || input[at + 1] != '\n')) break;
    at += input[at] == '\r' ? 2 : 1;
  }
  size_t next = 0;
  std::string_view line = Line(input, at, next);
  if (next == std::string_view::npos) {
    if (line.size() > kMaxRequestLineBytes) return Error(414, "request URI too long");
    if (input.size() >= max_head_bytes) return Error(400, "request head too large");
    // A request line that cannot become valid whatever follows: say so now.
    for (char c : line) {
      if (c != '\r' && !IsFieldChar(c)) return Error(400, "malformed request line");
    }
    return HeadParse{};
  }
  if (line.size() > kMaxRequestLineBytes) return Error(414, "request URI too long");
  if (next > max_head_bytes) return Error(400, "request head too large");
  for (char c : line) {
    if (!IsFieldChar(c) || c == '\t') return Error(400, "malformed request line");
  }
  std::string why;
  if (!ParseRequestLine(line, r, why)) return Error(400, why);
  at = next;
  while (true) {
    line = Line(input, at, next);
    if (next == std::string_view::npos) {
      if (line.size() > kMaxHeaderLineBytes) return Error(400, "header line too long");
      if (input.size() >= max_head_bytes) return Error(400, "request head too large");
      return HeadParse{};
    }
    if (next > max_head_bytes) return Error(400, "request head too large");
    if (line.size() > kMaxHeaderLineBytes) return Error(400, "header line too long");
    at = next;
    if (line.empty()) break;
    if (!ParseHeaderLine(line, r, why)) return Error(400, why);
  }
  HeadParse done;
  done.state = ParseState::kDone;
  done.request = std::move(r);
  done.head_bytes = at;
  return done;
}

}  // namespace tether::agent
