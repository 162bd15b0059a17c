// libFuzzer target for the upstream-proxy side (src/proxy/upstream.cc): URL parsing, the
// choice from the environment, the client side of CONNECT and SOCKS5, ToAbsoluteForm.
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/upstream/ as the ctest fuzz.upstream (label fuzz).
//
// One input serves every part. Besides memory safety it checks:
//   - a URL that parses has a host and a port, prints (without credentials) to a URL that
//     parses the same; with a password put in after "user:", an error never quotes it and
//     a success decodes it;
//   - the environment (fields of the input split at NUL) yields nothing or a proxy that one
//     of the variables names, and nothing when no_proxy is "*";
//   - the handshake (first two bytes: proxy kind, credentials, target, how the answer is cut
//     into reads) ends the same however the upstream's answer is cut; kDone and kFailed are
//     final; an HTTP proxy is only ever sent the CONNECT request; the bytes after kDone are
//     the end of the answer;
//   - ToAbsoluteForm keeps everything after the request line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/upstream.h"

namespace {

using namespace tether::proxy;
using Step = UpstreamHandshake::Step;

void Check(bool condition) {
  if (!condition) std::abort();
}

// Stands in for the password of a URL with user info, so that its absence can be checked.
constexpr std::string_view kMarker = "Zq9Sekr1t";

void CheckUrl(std::string_view url) {
  auto parsed = ParseUpstreamUrl(url);
  if (parsed.ok()) {
    const UpstreamProxy& p = *parsed;
    Check(!p.host.empty() && p.port != 0);
    UpstreamProxy bare = p;
    bare.credentials.reset();
    auto again = ParseUpstreamUrl(bare.ToString());
    Check(again.ok() && *again == bare);
  }

  // The same URL with kMarker as the password ("scheme://user:MARKER@..."): an error may
  // not quote it, a success must decode it.
  const size_t sep = url.find("://");
  const size_t start = sep == std::string_view::npos ? 0 : sep + 3;
  const size_t at = url.rfind('@');
  const size_t colon = url.find(':', start);
  if (at == std::string_view::npos || at < start || colon == std::string_view::npos || colon > at) {
    return;
  }
  const std::string outside = std::string(url.substr(0, colon + 1)) + std::string(url.substr(at));
  if (outside.find(kMarker.substr(0, 3)) != std::string::npos) return;
  const std::string with_marker =
      std::string(url.substr(0, colon + 1)) + std::string(kMarker) + std::string(url.substr(at));
  auto marked = ParseUpstreamUrl(with_marker);
  if (marked.ok()) {
    Check(marked->credentials.has_value() && marked->credentials->password == kMarker);
    Check(marked->ToString().find(kMarker) == std::string::npos);
  } else {
    Check(marked.error().ToString().find(kMarker) == std::string::npos);
  }
}

void CheckEnvironment(std::string_view in) {
  // no_proxy, https_proxy, http_proxy, all_proxy, the target host; NUL between them.
  std::vector<std::string> fields;
  size_t start = 0;
  while (fields.size() < 5) {
    const size_t nul = in.find('\0', start);
    fields.emplace_back(in.substr(start, nul == std::string_view::npos ? in.npos : nul - start));
    if (nul == std::string_view::npos) break;
    start = nul + 1;
  }
  fields.resize(5);
  const std::map<std::string, std::string> env = {{"no_proxy", fields[0]},
                                                  {"HTTPS_PROXY", fields[1]},
                                                  {"http_proxy", fields[2]},
                                                  {"all_proxy", fields[3]}};
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  const Target target{fields[4], 443, ClassifyHost(fields[4])};
  for (bool plain_http : {false, true}) {
    auto got = UpstreamFromEnvironment(getenv, target, plain_http);
    if (!got) continue;
    Check(fields[0] != "*");
    bool named = false;
    for (const std::string& value : {fields[1], fields[2], fields[3]}) {
      auto parsed = ParseUpstreamUrl(value);
      named = named || (parsed.ok() && *parsed == *got);
    }
    Check(named);
  }
}

struct Transcript {
  Step step = Step::kNeedMore;
  std::string output;
  std::string rest;
  std::string error;
  bool refused = false;
};

Transcript Drive(const UpstreamProxy& proxy, const Target& target, std::string_view answer,
                 size_t cut) {
  UpstreamHandshake h(proxy, target);
  Transcript t;
  t.output = h.TakeOutput();
  bool final = false;
  size_t pos = 0;
  do {
    const size_t n = cut == 0 ? answer.size() : cut;
    const Step step = h.Feed(answer.substr(pos, n));
    pos += n;
    const std::string out = h.TakeOutput();
    if (final) {
      Check(step == t.step);
      Check(out.empty());
    } else {
      t.step = step;
      t.output += out;
      final = step != Step::kNeedMore;
    }
  } while (pos < answer.size());
  Check(!h.TakeOutputPending());
  Check(h.Feed("") == t.step);
  t.error = h.error();
  t.refused = h.refused();
  Check(t.error.empty() == (t.step != Step::kFailed));
  Check(!t.refused || t.step == Step::kFailed);
  if (t.step == Step::kDone) t.rest = h.TakeRest();
  return t;
}

// An answer that is not HTTP fails on its first wrong byte and quotes what had come by then,
// which depends on the reads; the rest of every error does not.
std::string WithoutQuote(const std::string& error) {
  constexpr std::string_view kNotHttp = "not an HTTP answer";
  const size_t at = error.find(kNotHttp);
  return at == std::string::npos ? error : error.substr(0, at + kNotHttp.size());
}

bool Same(const Transcript& a, const Transcript& b) {
  return a.step == b.step && a.output == b.output && a.rest == b.rest &&
         WithoutQuote(a.error) == WithoutQuote(b.error) && a.refused == b.refused;
}

void CheckHandshake(std::string_view in) {
  if (in.size() < 2) return;
  const auto config = static_cast<uint8_t>(in[0]);
  const size_t cut = 1 + static_cast<uint8_t>(in[1]) % 16;
  const std::string_view answer = in.substr(2);

  UpstreamProxy proxy;
  proxy.kind = (config & 1) ? UpstreamProxy::Kind::kSocks5 : UpstreamProxy::Kind::kHttp;
  proxy.host = "127.0.0.1";
  proxy.port = 1080;
  if (config & 2) proxy.credentials = Credentials{"alice", "s3cret"};
  const Target targets[] = {
      {"example.com", 443, HostKind::kName},
      {"10.1.2.3", 8080, HostKind::kIpv4},
      {"2001:db8::1", 22, HostKind::kIpv6},
      {std::string(256, 'a'), 1, HostKind::kName},  // too long for SOCKS5
  };
  const Target& target = targets[(config >> 2) & 3];

  const Transcript whole = Drive(proxy, target, answer, 0);
  Check(Same(whole, Drive(proxy, target, answer, cut)));
  Check(Same(whole, Drive(proxy, target, answer, 1)));
  if (proxy.kind == UpstreamProxy::Kind::kHttp) {
    Check(whole.output == UpstreamHandshake(proxy, target).TakeOutput());
  }
  if (whole.step == Step::kDone) {
    Check(answer.ends_with(whole.rest) && whole.rest.size() < answer.size());
  }
}

void CheckAbsoluteForm(std::string_view head) {
  const Target target{"example.com", 8080, HostKind::kName};
  for (const std::optional<Credentials>& credentials :
       {std::optional<Credentials>(), std::optional<Credentials>(Credentials{"a", "b"})}) {
    const std::string out = ToAbsoluteForm(head, target, credentials);
    const size_t eol = head.find('\n');
    if (out == head) continue;
    Check(eol != std::string_view::npos && out.size() > head.size());
    Check(out.ends_with(head.substr(eol + 1)));
    Check(out.find("http://example.com:8080") != std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckUrl(in);
  CheckEnvironment(in);
  CheckHandshake(in);
  CheckAbsoluteForm(in);
  return 0;
}
