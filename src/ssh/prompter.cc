#include "ssh/prompter.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include "common/unique_fd.h"

namespace tether::ssh {

TtyPrompter::TtyPrompter(bool disabled) {
  if (disabled) {
    enabled_ = false;
    return;
  }
  UniqueFd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC));
  enabled_ = tty.valid();
}

bool TtyPrompter::CanPrompt() const { return enabled_; }

std::optional<std::string> TtyPrompter::Ask(const std::string& prompt, bool echo) {
  if (!enabled_) return std::nullopt;
  UniqueFd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC));
  if (!tty) return std::nullopt;
  [[maybe_unused]] ssize_t w = ::write(tty.get(), prompt.data(), prompt.size());
  termios saved{};
  bool restore = false;
  if (!echo && ::tcgetattr(tty.get(), &saved) == 0) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    restore = ::tcsetattr(tty.get(), TCSAFLUSH, &quiet) == 0;
  }
  std::string line;
  char c;
  bool got_newline = false;
  // Bounded: a line longer than this is not a passphrase anyone types.
  constexpr size_t kMaxAnswer = 4096;
  while (line.size() < kMaxAnswer && ::read(tty.get(), &c, 1) == 1) {
    if (c == '\n' || c == '\r') {
      got_newline = true;
      break;
    }
    line.push_back(c);
  }
  if (restore) {
    ::tcsetattr(tty.get(), TCSAFLUSH, &saved);
    [[maybe_unused]] ssize_t n = ::write(tty.get(), "\n", 1);
  }
  if (!got_newline && line.empty()) return std::nullopt;
  return line;
}

void TtyPrompter::Tell(const std::string& text) {
  if (!enabled_) return;
  UniqueFd tty(::open("/dev/tty", O_WRONLY | O_CLOEXEC));
  if (!tty) return;
  std::string line = text + "\n";
  [[maybe_unused]] ssize_t w = ::write(tty.get(), line.data(), line.size());
}

}  // namespace tether::ssh
