// A desktop notification, for what needs the person while nobody watches a terminal (a
// daemon whose reconnect wants a one-time code): notify-send on Linux when a desktop
// session is there (DISPLAY, WAYLAND_DISPLAY or DBUS_SESSION_BUS_ADDRESS set), osascript on
// macOS. Best effort: nothing happens without the program or a session, and the daemon
// never waits for it (the program is reaped on a thread of its own, killed after 10 s).
#pragma once

#include <string>
#include <vector>

namespace tether::daemon {

// The program and arguments that would show `title` and `body` here; empty when this
// machine has no way to (no program in PATH, no desktop session).
std::vector<std::string> NotifyCommand(const std::string& title, const std::string& body);

// Runs NotifyCommand's program, if any, without waiting for it. False when none ran.
bool NotifyDesktop(const std::string& title, const std::string& body);

}  // namespace tether::daemon
