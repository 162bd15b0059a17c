// libFuzzer target for the SOCKS4/4a/5 parsers and encoders (src/proxy/socks.cc).
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/socks/ as the ctest fuzz.socks (label fuzz).
//
// Besides memory safety it checks the tri-state promise every caller relies on, for each
// parser and any input:
//   - done consumes a non-empty prefix, and that prefix alone parses the same, while the
//     prefix one byte shorter is need-more (a message is recognised on its last byte);
//   - need-more stays need-more when the last byte is taken away;
//   - refused stays refused, with the same reply, when more bytes arrive;
// and that a SOCKS5 target, written back by the reply encoder, parses to the same target.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/sniff.h"
#include "proxy/socks.h"

namespace {

using namespace tether::proxy;

void Check(bool condition) {
  if (!condition) std::abort();
}

template <typename Parser, typename Same>
void CheckTriState(Parser parse, std::string_view in, Same same) {
  auto got = parse(in);
  switch (got.state()) {
    case ParseState::kDone: {
      Check(got.consumed() > 0 && got.consumed() <= in.size());
      auto alone = parse(in.substr(0, got.consumed()));
      Check(alone.done() && alone.consumed() == got.consumed() && same(alone.value(), got.value()));
      Check(parse(in.substr(0, got.consumed() - 1)).need_more());
      break;
    }
    case ParseState::kNeedMore:
      if (!in.empty()) Check(parse(in.substr(0, in.size() - 1)).need_more());
      break;
    case ParseState::kRefused: {
      Check(!got.refusal().reason.empty());
      const std::string longer = std::string(in) + std::string("\x00\x05\xff", 3);
      auto again = parse(longer);
      Check(again.refused() && again.refusal().reply == got.refusal().reply &&
            again.refusal().code == got.refusal().code);
      break;
    }
  }
}

template <typename T>
bool Equal(const T& a, const T& b) {
  return a == b;
}

void CheckTarget(const Target& t) {
  Check(!t.host.empty() && t.port != 0);
  Check(t.kind == ClassifyHost(t.host));
  Check(t.host.find('\0') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)Sniff(in);

  CheckTriState(ParseSocks5Greeting, in, Equal<Socks5Greeting>);
  CheckTriState(ParseSocks5UserPass, in, Equal<Credentials>);
  CheckTriState(ParseSocks5Request, in, Equal<Target>);
  CheckTriState(ParseSocks4Request, in, Equal<Socks4Request>);

  auto greeting = ParseSocks5Greeting(in);
  if (greeting.done()) {
    Check(!greeting.value().methods.empty());
    for (SocksAuth auth : {SocksAuth::kNone, SocksAuth::kUserPass}) {
      const Socks5Method m = SelectSocks5Method(greeting.value(), auth);
      Check(m == Socks5Method::kNoAcceptable || greeting.value().Offers(m));
    }
  }

  auto request = ParseSocks5Request(in);
  if (request.done()) {
    CheckTarget(request.value());
    const Target& t = request.value();
    std::string encoded = EncodeSocks5Reply(Socks5Reply::kSucceeded, t);
    encoded[1] = static_cast<char>(Socks5Command::kConnect);
    auto again = ParseSocks5Request(encoded);
    Check(again.done() && again.consumed() == encoded.size());
    Check(again.value().port == t.port && again.value().kind == t.kind);
    // A name comes back as sent; an address literal sent as a "domain" ("::FFFF:1.2.3.4")
    // comes back in canonical text, which then encodes to the same bytes.
    if (t.kind == HostKind::kName) Check(again.value().host == t.host);
    Check(EncodeSocks5Reply(Socks5Reply::kSucceeded, again.value()) ==
          EncodeSocks5Reply(Socks5Reply::kSucceeded, t));
  }

  auto socks4 = ParseSocks4Request(in);
  if (socks4.done()) {
    CheckTarget(socks4.value().target);
    Check(socks4.value().user_id.size() <= kSocks4MaxUserIdBytes);
  }
  return 0;
}
