// libFuzzer target for the server side of a proxy connection (src/proxy/handshake.cc).
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/proxy_handshake/ as the ctest fuzz.proxy_handshake (label fuzz).
//
// The first byte picks the policy (bit 0: auth required) and how the stream is cut into
// reads (the rest of it); the other bytes are what the client sends. Besides memory safety
// it checks:
//   - the outcome does not depend on how the stream is cut: fed whole, in chunks, or a byte
//     at a time, the step, every byte written back and, after kConnect, the target and the
//     bytes for upstream are the same;
//   - kConnect and kClose are final: feeding more keeps the step, writes nothing more, and
//     after kConnect the new bytes go upstream;
//   - no way in without the password: under auth, kConnect never comes from SOCKS4, and
//     only after the client sent the configured secret (RFC 1929 or Basic);
//   - a target has a host and a port; a tunnel's upstream bytes are the end of the stream;
//   - every Connected() and Failed() answer is non-empty, except a forward's Connected().
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/handshake.h"

namespace {

using namespace tether::proxy;
using Step = ProxyHandshake::Step;

constexpr char kUser[] = "alice";
constexpr char kPassword[] = "s3cret";
constexpr char kBasicToken[] = "YWxpY2U6czNjcmV0";  // base64("alice:s3cret")
// Byte-at-a-time feeding re-parses the buffer each call; beyond this it is only slow.
constexpr size_t kMaxBytewise = 2048;

void Check(bool condition) {
  if (!condition) std::abort();
}

struct Outcome {
  Step step = Step::kNeedMore;
  std::string reply;
  std::string upstream;
  Target target;
  Protocol protocol = Protocol::kNeedMore;
  bool forwards_http = false;
};

// Feeds `stream` cut after each length in `cuts` (cycled), all of it, even past the end.
Outcome Drive(const ProxyPolicy& policy, std::string_view stream, const std::vector<size_t>& cuts) {
  ProxyHandshake h(policy);
  Outcome o;
  bool final = false;
  size_t pos = 0;
  size_t i = 0;
  do {
    const size_t n = cuts.empty() ? stream.size() : cuts[i++ % cuts.size()];
    const Step step = h.Feed(stream.substr(pos, n));
    pos += n;
    const std::string reply = h.TakeReply();
    if (final) {
      Check(step == o.step);
      Check(reply.empty());
    } else {
      o.step = step;
      o.reply += reply;
      final = step != Step::kNeedMore;
    }
  } while (pos < stream.size());
  Check(h.Feed("") == o.step);
  Check(h.TakeReply().empty());
  if (o.step == Step::kClose) {
    Check(!h.error().empty());
    Check(h.TakeUpstream().empty());
  } else {
    Check(h.error().empty());
  }
  if (o.step == Step::kConnect) {
    o.upstream = h.TakeUpstream();
    o.target = h.target();
    o.protocol = h.protocol();
    o.forwards_http = h.forwards_http();
    // Late bytes still reach the target, after what was already there.
    Check(h.Feed("late") == Step::kConnect);
    Check(h.TakeUpstream() == "late");
  }
  return o;
}

bool Same(const Outcome& a, const Outcome& b) {
  return a.step == b.step && a.reply == b.reply && a.upstream == b.upstream &&
         a.target == b.target && a.protocol == b.protocol && a.forwards_http == b.forwards_http;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t control = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  ProxyPolicy policy;
  policy.require_auth = (control & 1) != 0;
  policy.credentials = Credentials{kUser, kPassword};

  const Outcome whole = Drive(policy, stream, {});
  // Chunks of 1..8 bytes, in a pattern the control byte picks.
  std::vector<size_t> cuts;
  for (int i = 1; i < 8; i += 2) cuts.push_back(1 + ((control >> i) & 7));
  Check(Same(whole, Drive(policy, stream, cuts)));
  if (stream.size() <= kMaxBytewise) Check(Same(whole, Drive(policy, stream, {1})));

  if (whole.step == Step::kConnect) {
    Check(!whole.target.host.empty() && whole.target.port != 0);
    Check(whole.protocol != Protocol::kNeedMore && whole.protocol != Protocol::kUnknown);
    if (policy.require_auth) {
      Check(whole.protocol != Protocol::kSocks4);
      const std::string_view secret = whole.protocol == Protocol::kSocks5 ? kPassword : kBasicToken;
      Check(stream.find(secret) != std::string_view::npos);
    }
    if (whole.forwards_http) {
      Check(whole.protocol == Protocol::kHttp);
      Check(whole.upstream.find("\r\n\r\n") != std::string::npos);
    } else {
      Check(whole.upstream.size() < stream.size());
      Check(stream.ends_with(whole.upstream));
    }

    ProxyHandshake h(policy);
    Check(h.Feed(stream) == Step::kConnect);
    Check(h.Connected().empty() == whole.forwards_http);
    for (ConnectFailure why :
         {ConnectFailure::kRefused, ConnectFailure::kUnreachable, ConnectFailure::kTimedOut,
          ConnectFailure::kNotAllowed, ConnectFailure::kOther}) {
      Check(!h.Failed(why, "x").empty());
    }
  }
  return 0;
}
