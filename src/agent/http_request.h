// The agent's HTTP/1.1 request head parser: pure, incremental, no I/O. It takes the bytes a
// connection has sent so far and answers need-more, done (a request and how many bytes its
// head took) or an error with the status to answer (400 or 414). Bounds, so a client cannot
// make us buffer without end:
//   request line  at most kMaxRequestLineBytes, else 414 (also while it is still arriving)
//   header line   at most kMaxHeaderLineBytes, else 400
//   whole head    at most `max_head_bytes`, else 400
// Accepted, by example:
//   "GET /status HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n"   CRLF line ends
//   "GET /lease HTTP/1.0\n\n"                                   bare LF too, as curl never
//                                                               sends but netcat users do
//   "POST /extend?hours=2 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
// Refused (400): "GARBAGE", "GET", "GET /status" (no version), "GET /s HTTP/9.9",
// "GET /s HTTP/1.1 extra", a target not starting with '/', a header line without ':' or
// with a space before it, a folded (indented) header line, control bytes in a line.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tether::agent {

inline constexpr size_t kMaxRequestLineBytes = 8 * 1024;
inline constexpr size_t kMaxHeaderLineBytes = 8 * 1024;

struct HttpRequest {
  std::string method;
  std::string target;                                        // as sent: path and query
  std::string path;                                          // percent-decoded, without the query
  std::string query;                                         // after '?', as sent
  int minor_version = 1;                                     // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent, values trimmed

  // Header lookups ignore the name's case (RFC 9110 section 5.1).
  size_t HeaderCount(std::string_view name) const;
  // The first value of `name`.
  std::optional<std::string_view> Header(std::string_view name) const;
  // The percent-decoded value of `name` in the query ('+' is a space), the first one.
  std::optional<std::string> QueryParam(std::string_view name) const;
  // HTTP/1.1 keeps the connection unless "Connection: close"; 1.0 only on "keep-alive".
  bool KeepAlive() const;
};

enum class ParseState { kNeedMore, kDone, kError };

struct HeadParse {
  ParseState state = ParseState::kNeedMore;
  HttpRequest request;    // kDone
  size_t head_bytes = 0;  // kDone: the bytes of `input` the head took, empty line included
  int status = 0;         // kError: 400 or 414
  std::string reason;     // kError: what was wrong, for the answer's body
};

HeadParse ParseRequestHead(std::string_view input, size_t max_head_bytes);

// "%41b+c" -> "Ab c" with `plus_is_space`; a malformed escape is kept as it is.
std::string PercentDecode(std::string_view s, bool plus_is_space);

}  // namespace tether::agent
