// Asking the person at the keyboard: passphrases, one-time codes, host-key questions.
// Only the controlling terminal is used (never stdin, which may carry data).
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
};

// Prompts on /dev/tty. CanPrompt() is false when there is no terminal or `disabled`.
class TtyPrompter : public Prompter {
 public:
  explicit TtyPrompter(bool disabled);
  bool CanPrompt() const override;
  std::optional<std::string> Ask(const std::string& prompt, bool echo) override;
  void Tell(const std::string& text) override;

 private:
  bool enabled_;
};

// Never prompts: for daemons and tests.
class NoPrompter : public Prompter {
 public:
  bool CanPrompt() const override { return false; }
  std::optional<std::string> Ask(const std::string&, bool) override { return std::nullopt; }
  void Tell(const std::string&) override {}
};

}  // namespace tether::ssh
