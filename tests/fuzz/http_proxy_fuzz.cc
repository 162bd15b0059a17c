// libFuzzer target for the HTTP proxy request parser (src/proxy/http_proxy.cc).
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/http_proxy/ as the ctest fuzz.http_proxy (label fuzz).
//
// Besides memory safety it checks:
//   - the tri-state promise: done consumes the head, which alone parses the same and one
//     byte shorter is need-more; need-more never holds kHttpMaxHeadBytes bytes; refused
//     stays refused, with the same reply, when more bytes arrive;
//   - the rewritten head: CRLF only, ends with an empty line, carries no credentials and no
//     hop-by-hop field, has one Host, ends with Connection: close, and is origin-form (the
//     parser itself refuses it as "names no host");
//   - Basic credentials: whatever decodes, encoded again, decodes to the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/http_proxy.h"

namespace {

using namespace tether::proxy;

void Check(bool condition) {
  if (!condition) std::abort();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string EncodeBase64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t bits = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) bits |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) bits |= static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(bits >> 18) & 63];
    out += kAlphabet[(bits >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(bits >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[bits & 63] : '=';
  }
  return out;
}

void CheckForwardHead(const std::string& head) {
  Check(head.size() >= 4 && head.compare(head.size() - 4, 4, "\r\n\r\n") == 0);
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\n') Check(i > 0 && head[i - 1] == '\r');
    if (head[i] == '\r') Check(i + 1 < head.size() && head[i + 1] == '\n');
  }
  const std::string lower = Lower(head);
  for (std::string_view banned : {"\r\nproxy-authorization:", "\r\nproxy-connection:",
                                  "\r\nkeep-alive:", "\r\nte:", "\r\nupgrade:"}) {
    Check(lower.find(banned) == std::string::npos);
  }
  const size_t host = lower.find("\r\nhost:");
  Check(host != std::string::npos && lower.find("\r\nhost:", host + 1) == std::string::npos);
  const size_t connection = lower.find("\r\nconnection:");
  Check(connection != std::string::npos && head.size() >= 23 &&
        head.compare(head.size() - 23, 23, "\r\nConnection: close\r\n\r\n") == 0 &&
        connection == head.size() - 23);
  auto again = ParseHttpProxyRequest(head);
  Check(again.refused() && again.refusal().code == kHttpBadRequest &&
        again.refusal().reason.find("names no host") != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  auto got = ParseHttpProxyRequest(in);
  switch (got.state()) {
    case ParseState::kDone: {
      const size_t n = got.consumed();
      Check(n > 0 && n <= in.size() && n <= kHttpMaxHeadBytes);
      auto alone = ParseHttpProxyRequest(in.substr(0, n));
      Check(alone.done() && alone.consumed() == n &&
            alone.value().forward_head == got.value().forward_head &&
            alone.value().target == got.value().target);
      Check(ParseHttpProxyRequest(in.substr(0, n - 1)).need_more());
      const HttpProxyRequest& r = got.value();
      Check(!r.target.host.empty() && r.target.port != 0);
      if (r.kind == HttpRequestKind::kForward) {
        CheckForwardHead(r.forward_head);
      } else {
        Check(r.forward_head.empty() && r.method == "CONNECT");
      }
      break;
    }
    case ParseState::kNeedMore:
      Check(in.size() < kHttpMaxHeadBytes);
      break;
    case ParseState::kRefused: {
      Check(got.refusal().reply.rfind("HTTP/1.1 " + std::to_string(got.refusal().code) + " ", 0) ==
            0);
      auto longer = ParseHttpProxyRequest(std::string(in) + "\r\n\r\nX");
      Check(longer.refused() && longer.refusal().reply == got.refusal().reply);
      break;
    }
  }

  auto creds = ParseBasicCredentials(in);
  if (creds.ok()) {
    auto again =
        ParseBasicCredentials("Basic " + EncodeBase64(creds->username + ":" + creds->password));
    Check(again.ok() && *again == *creds);
  }
  return 0;
}
