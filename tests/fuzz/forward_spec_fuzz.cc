// libFuzzer target for the forward-spec grammar (src/config/forward_spec.cc).
//
// Not part of the CMake build. Build and run it with clang from the repository root:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I src \
//     tests/fuzz/forward_spec_fuzz.cc src/config/forward_spec.cc src/common/result.cc \
//     -o /tmp/forward_spec_fuzz
//   /tmp/forward_spec_fuzz -max_total_time=60
//
// Besides memory safety it checks the promise of ForwardSpec::ToString: whatever parses
// prints back to a spec that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/forward_spec.h"

namespace {

using tether::config::ForwardKind;
using tether::config::ForwardSpec;

void CheckRoundTrip(ForwardKind kind, const ForwardSpec& spec) {
  auto again = tether::config::ParseForwardSpec(kind, spec.ToString());
  if (!again.ok() || !(*again == spec)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  for (ForwardKind kind : {ForwardKind::kLocal, ForwardKind::kRemote, ForwardKind::kDynamic}) {
    auto spec = tether::config::ParseForwardSpec(kind, input);
    if (spec.ok()) CheckRoundTrip(kind, *spec);
    auto line = tether::config::ParseForwardConfigArgs(kind, input);
    if (line.ok()) CheckRoundTrip(kind, *line);
  }
  (void)tether::config::SplitConfigWords(input);
  return 0;
}
