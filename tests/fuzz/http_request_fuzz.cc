// libFuzzer target for the agent's HTTP request head parser (src/agent/http_request.cc).
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/http_request/ as the ctest fuzz.http_request (label fuzz).
//
// Besides memory safety it checks what the server relies on: a head is never done beyond
// the input or the budget, an error carries 400 or 414, and feeding the same bytes in two
// pieces never turns a refused head into an accepted one (the reception parses what has
// arrived so far).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/http_request.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tether::agent::ParseRequestHead;
  using tether::agent::ParseState;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (size_t budget : {size_t{64}, size_t{1024}, size_t{16 * 1024}}) {
    auto p = ParseRequestHead(input, budget);
    if (p.state == ParseState::kDone) {
      Check(p.head_bytes > 0 && p.head_bytes <= input.size() && p.head_bytes <= budget);
      Check(!p.request.method.empty() && !p.request.target.empty() && p.request.target[0] == '/');
      (void)p.request.KeepAlive();
      (void)p.request.QueryParam("hours");
      // The head is done whatever follows it.
      auto again = ParseRequestHead(input.substr(0, p.head_bytes), budget);
      Check(again.state == ParseState::kDone && again.head_bytes == p.head_bytes);
    } else if (p.state == ParseState::kError) {
      Check(p.status == 400 || p.status == 414);
      Check(!p.reason.empty());
    }
    // A head refused as a whole was not already complete in a prefix.
    if (p.state == ParseState::kError) {
      auto half = ParseRequestHead(input.substr(0, input.size() / 2), budget);
      Check(half.state != ParseState::kDone);
    }
  }
  (void)tether::agent::PercentDecode(input, true);
  return 0;
}
