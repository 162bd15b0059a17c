// libFuzzer target for the daemon's forwards record (src/daemon/forwards_record.cc), the
// file `tether doctor` reads after a crash: whatever is in it must give a record or an
// "unreadable record" error, never a crash or a hang.
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/forwards_record/ as the ctest fuzz.forwards_record (label fuzz).
//
// Besides memory safety it checks that a record that parses prints back to text that
// parses to the same record.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/forwards_record.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto record = tether::daemon::ParseForwardsRecord(input);
  if (!record.ok()) {
    if (record.error().message.rfind("unreadable record: ", 0) != 0) std::abort();
    return 0;
  }
  auto again = tether::daemon::ParseForwardsRecord(tether::daemon::FormatForwardsRecord(*record));
  if (!again.ok() || !(*again == *record)) std::abort();
  return 0;
}
