// Asking the person at the keyboard: passphrases, one-time codes, passwords, host-key
// questions. On the controlling terminal (never stdin, which may carry data), or through
// an SSH_ASKPASS program when ssh would use one (readpass.c's rules, see ChoosePromptRoute).
#pragma once

#include <optional>
#include <string>

namespace tether::ssh {

class Prompter {
 public:
  virtual ~Prompter() = default;
  // False when nobody can answer (no terminal, BatchMode, a daemon): prompts fail then.
  virtual bool CanPrompt() const = 0;
  // Asks and reads one line; `echo` false for secrets. nullopt when nobody answered.
  virtual std::optional<std::string> Ask(const std::string& prompt, bool echo) = 0;
  // Shows a line to the person (instructions, banners).
  virtual void Tell(const std::string& text) = 0;
  // Why nobody can answer (CanPrompt() false), or why the last Ask() got no answer, in
  // words for an error message; "" when there is nothing to say.
  virtual std::string WhyNot() const { return ""; }
  // What the person can do so that they are asked, when CanPrompt() is false.
  virtual std::string HowToBeAsked() const { return "run `tether up` from a terminal"; }
};

// SSH_ASKPASS_REQUIRE, as ssh reads it (case-insensitive; anything else is unset).
enum class AskpassRequire { kUnset, kNever, kPrefer, kForce };

// What decides who answers a prompt. FromEnvironment() reads the process's.
struct PromptSetting {
  bool batch_mode = false;     // BatchMode yes: never ask anybody
  bool have_terminal = false;  // /dev/tty opens
  bool have_display = false;   // DISPLAY or WAYLAND_DISPLAY is set and not empty
  std::string askpass;         // SSH_ASKPASS, else kDefaultAskpass
  AskpassRequire require = AskpassRequire::kUnset;

  static PromptSetting FromEnvironment(bool batch_mode);
};

// Where ssh looks when SSH_ASKPASS is unset (Debian's ssh-askpass packages put it there).
inline constexpr char kDefaultAskpass[] = "/usr/bin/ssh-askpass";

enum class PromptRoute { kNobody, kTerminal, kAskpass };

struct PromptChoice {
  PromptRoute route = PromptRoute::kNobody;
  std::string why_nobody;  // for kNobody: why, in words
  std::string advice;      // for kNobody: what to change
};

// ssh's choice (readpass.c): BatchMode asks nobody. Askpass is allowed when a display is
// set; SSH_ASKPASS_REQUIRE=force uses it whatever the display, prefer uses it instead of
// the terminal when allowed, never rules it out. Without a terminal askpass is used when
// allowed, else nobody is asked.
PromptChoice ChoosePromptRoute(const PromptSetting& setting);

// Prompts where ChoosePromptRoute says: /dev/tty, or SSH_ASKPASS run with the prompt as
// its one argument, its first line of output the answer (a non-zero exit: no answer).
// Lines told go to the terminal, or to stderr without one. One thread at a time.
class TtyPrompter : public Prompter {
 public:
  // The process's environment, with BatchMode from the host's configuration.
  explicit TtyPrompter(bool batch_mode);
  explicit TtyPrompter(const PromptSetting& setting);
  bool CanPrompt() const override;
  std::optional<std::string> Ask(const std::string& prompt, bool echo) override;
  void Tell(const std::string& text) override;
  std::string WhyNot() const override;
  std::string HowToBeAsked() const override;

 private:
  std::optional<std::string> AskTerminal(const std::string& prompt, bool echo);
  std::optional<std::string> AskAskpass(const std::string& prompt);

  PromptSetting setting_;
  PromptChoice choice_;
  std::string last_failure_;
};

// Never prompts: for daemons and tests. `how_to_be_asked` is the advice errors give.
class NoPrompter : public Prompter {
 public:
  NoPrompter() = default;
  explicit NoPrompter(std::string how_to_be_asked) : how_(std::move(how_to_be_asked)) {}
  bool CanPrompt() const override { return false; }
  std::optional<std::string> Ask(const std::string&, bool) override { return std::nullopt; }
  void Tell(const std::string&) override {}
  std::string WhyNot() const override { return "this connection is made without asking anyone"; }
  std::string HowToBeAsked() const override {
    return how_.empty() ? Prompter::HowToBeAsked() : how_;
  }

 private:
  std::string how_;
};

}  // namespace tether::ssh
