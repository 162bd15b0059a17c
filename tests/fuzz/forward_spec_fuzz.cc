// libFuzzer target for the forward-spec grammar (src/config/forward_spec.cc).
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/forward_spec/ as the ctest fuzz.forward_spec (label fuzz).
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
