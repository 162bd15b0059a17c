#include "ssh/prompter.h"

#include <fcntl.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/process.h"
#include "common/unique_fd.h"

extern char** environ;

namespace tether::ssh {
namespace {

// Bounded: a line longer than this is not a passphrase anyone types.
constexpr size_t kMaxAnswer = 4096;
// A person at a dialog box takes their time; a stuck program must not hold a login forever.
constexpr std::chrono::minutes kAskpassTimeout{10};

bool SetAndNotEmpty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

AskpassRequire ParseRequire(const char* text) {
  if (text == nullptr) return AskpassRequire::kUnset;
  if (::strcasecmp(text, "force") == 0) return AskpassRequire::kForce;
  if (::strcasecmp(text, "prefer") == 0) return AskpassRequire::kPrefer;
  if (::strcasecmp(text, "never") == 0) return AskpassRequire::kNever;
  return AskpassRequire::kUnset;
}

// The answer ends at the first end of line, as ssh reads it.
std::string FirstLine(std::string text) {
  text.resize(text.find_first_of("\r\n") == std::string::npos ? text.size()
                                                              : text.find_first_of("\r\n"));
  return text;
}

}  // namespace

PromptSetting PromptSetting::FromEnvironment(bool batch_mode) {
  PromptSetting s;
  s.batch_mode = batch_mode;
  UniqueFd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
  s.have_terminal = tty.valid();
  s.have_display = SetAndNotEmpty("DISPLAY") || SetAndNotEmpty("WAYLAND_DISPLAY");
  s.askpass = SetAndNotEmpty("SSH_ASKPASS") ? std::getenv("SSH_ASKPASS") : kDefaultAskpass;
  s.require = ParseRequire(std::getenv("SSH_ASKPASS_REQUIRE"));
  return s;
}

PromptChoice ChoosePromptRoute(const PromptSetting& setting) {
  if (setting.batch_mode) {
    return {PromptRoute::kNobody,
            "BatchMode is set for this host, so tether asks nobody (as ssh does)",
            "set `BatchMode no` for this host to be asked"};
  }
  bool allow_askpass = setting.have_display;
  bool use_askpass = false;
  switch (setting.require) {
    case AskpassRequire::kForce:
      use_askpass = allow_askpass = true;
      break;
    case AskpassRequire::kPrefer:
      use_askpass = allow_askpass;
      break;
    case AskpassRequire::kNever:
      allow_askpass = false;
      break;
    case AskpassRequire::kUnset:
      break;
  }
  if (!use_askpass && setting.have_terminal) return {PromptRoute::kTerminal, "", ""};
  if (allow_askpass) return {PromptRoute::kAskpass, "", ""};
  if (setting.require == AskpassRequire::kNever) {
    return {PromptRoute::kNobody,
            "there is no terminal to ask on, and SSH_ASKPASS_REQUIRE=never rules out "
            "SSH_ASKPASS",
            "run `tether up` from a terminal, or let SSH_ASKPASS answer (SSH_ASKPASS_REQUIRE="
            "force)"};
  }
  return {PromptRoute::kNobody,
          "there is no terminal to ask on, and without one SSH_ASKPASS is used only when "
          "DISPLAY or WAYLAND_DISPLAY is set or SSH_ASKPASS_REQUIRE=force",
          "run `tether up` from a terminal, or set SSH_ASKPASS to a program that answers, "
          "with SSH_ASKPASS_REQUIRE=force"};
}

TtyPrompter::TtyPrompter(bool batch_mode)
    : TtyPrompter(PromptSetting::FromEnvironment(batch_mode)) {}

TtyPrompter::TtyPrompter(const PromptSetting& setting)
    : setting_(setting), choice_(ChoosePromptRoute(setting)) {}

bool TtyPrompter::CanPrompt() const { return choice_.route != PromptRoute::kNobody; }

std::string TtyPrompter::WhyNot() const {
  if (choice_.route == PromptRoute::kNobody) return choice_.why_nobody;
  return last_failure_;
}

std::string TtyPrompter::HowToBeAsked() const {
  return choice_.advice.empty() ? Prompter::HowToBeAsked() : choice_.advice;
}

std::optional<std::string> TtyPrompter::Ask(const std::string& prompt, bool echo) {
  last_failure_.clear();
  switch (choice_.route) {
    case PromptRoute::kTerminal:
      return AskTerminal(prompt, echo);
    case PromptRoute::kAskpass:
      return AskAskpass(prompt);
    case PromptRoute::kNobody:
      break;
  }
  return std::nullopt;
}

std::optional<std::string> TtyPrompter::AskTerminal(const std::string& prompt, bool echo) {
  UniqueFd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC));
  if (!tty) {
    last_failure_ = std::string("the terminal could not be opened: ") + std::strerror(errno);
    return std::nullopt;
  }
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
  if (!got_newline && line.empty()) {
    last_failure_ = "the terminal closed without an answer";
    return std::nullopt;
  }
  return line;
}

std::optional<std::string> TtyPrompter::AskAskpass(const std::string& prompt) {
  const std::string& program = setting_.askpass;
  ProcessOptions options;
  options.timeout = kAskpassTimeout;
  options.max_output = kMaxAnswer;
  ProcessResult r = RunProcess({program, prompt}, options);
  std::string answer = FirstLine(std::move(r.out));
  if (!r.ok()) {
    std::fill(answer.begin(), answer.end(), '\0');
    last_failure_ = "SSH_ASKPASS program " + program +
                    (r.timed_out ? " gave no answer in 10 minutes" : " " + r.Describe());
    return std::nullopt;
  }
  return answer;
}

void TtyPrompter::Tell(const std::string& text) {
  if (choice_.route == PromptRoute::kNobody) return;
  std::string line = text + "\n";
  UniqueFd tty;
  if (setting_.have_terminal) tty.Reset(::open("/dev/tty", O_WRONLY | O_CLOEXEC));
  // Without a terminal, as ssh: on stderr, where the person who ran us looks.
  const int fd = tty.valid() ? tty.get() : STDERR_FILENO;
  [[maybe_unused]] ssize_t w = ::write(fd, line.data(), line.size());
}

}  // namespace tether::ssh
