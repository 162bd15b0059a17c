#include "agent/log.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "common/text.h"

namespace tether::agent {

void Log(const std::string& line) {
  std::string out = FormatUtc(std::chrono::system_clock::now());
  out += " tether-agent: ";
  out += line;
  out += '\n';
  const char* p = out.data();
  size_t left = out.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere left to report a failed log write
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace tether::agent
