// A private tmux server for end-to-end tests of what a person sees at a terminal: the
// test starts a command on a real pty, reads the screen and types, as a person would.
#pragma once

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "e2e/testbed.h"

namespace tether::testing {

// A private tmux server (its own socket) running one command in a detached window.
class Tmux {
 public:
  explicit Tmux(const std::string& socket) : socket_(socket) {}
  ~Tmux() {
    CommandResult pid = Run({"display-message", "-p", "#{pid}"});
    (void)Run({"kill-server"});
    if (pid.ok()) {
      pid_t p = static_cast<pid_t>(std::atol(pid.out.c_str()));
      if (p > 1 && ProcessAlive(p)) TerminatePid(p, std::chrono::milliseconds(2000));
    }
  }
  CommandResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"tmux", "-S", socket_});
    return RunCommand(args, {}, std::chrono::seconds(10));
  }
  bool Start(const std::string& shell_command) {
    return Run({"new-session", "-d", "-x", "200", "-y", "50", shell_command}).ok();
  }
  std::string Screen() { return Run({"capture-pane", "-p", "-J", "-S", "-100"}).out; }
  bool WaitForText(const std::string& text, std::chrono::milliseconds timeout) {
    return WaitFor([&] { return Screen().find(text) != std::string::npos; }, timeout,
                   std::chrono::milliseconds(100));
  }
  bool Resize(int cols, int rows) {
    return Run({"resize-window", "-x", std::to_string(cols), "-y", std::to_string(rows)}).ok();
  }
  // A key by tmux's name for it ("C-c").
  bool Press(const std::string& key) { return Run({"send-keys", key}).ok(); }
  bool Type(const std::string& keys) {
    return Run({"send-keys", "-l", keys}).ok() && Run({"send-keys", "Enter"}).ok();
  }

 private:
  std::string socket_;
};

}  // namespace tether::testing
