// libFuzzer target for the ssh_config reader (src/config/ssh_config.cc).
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/ssh_config/ as the ctest fuzz.ssh_config (label fuzz).
//
// The input's first line is a destination, the rest a config file given as -F. The reader
// works on files, so each input is written to one unlinked temporary file (Linux). Home
// is a directory that does not exist, so relative Include lines find nothing; absolute ones
// may read real files, which is harmless but slows the run: seed with real configs.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/ssh_config.h"

namespace {

// A temporary file that is unlinked at once and read through /proc/self/fd, so nothing is
// left behind however the fuzzer exits (libFuzzer does not always run atexit handlers).
int ConfigFd() {
  static const int fd = [] {
    char name[] = "/tmp/tether-ssh-config-fuzz-XXXXXX";
    const int created = mkstemp(name);
    if (created < 0) std::abort();
    unlink(name);
    return created;
  }();
  return fd;
}

std::string ConfigPath() { return "/proc/self/fd/" + std::to_string(ConfigFd()); }

void WriteConfig(std::string_view text) {
  if (ftruncate(ConfigFd(), 0) != 0) std::abort();
  if (!text.empty() &&
      pwrite(ConfigFd(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view first = input.substr(0, newline);
  const std::string_view rest =
      newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);

  const bool destination_ok = tether::config::ParseDestination(first).ok();
  WriteConfig(rest);
  tether::config::ReadOptions options;
  options.config_file = ConfigPath();
  options.system_config = "";
  options.home = "/nonexistent/tether-fuzz-home";
  options.local_user = "fuzz";
  auto config = tether::config::ReadHostConfig(destination_ok ? first : "gpu", options);
  if (config.ok()) {
    // Every forward the reader accepted must print back to itself, like the parser's own.
    for (const auto& forward : config->forwards) {
      auto again = tether::config::ParseForwardSpec(forward.kind, forward.ToString());
      if (!again.ok() || !(*again == forward)) std::abort();
    }
    if (config->port == 0 || config->hostname.empty() || config->user.empty()) std::abort();
  }
  (void)tether::config::MatchPattern(first, rest);
  return 0;
}
