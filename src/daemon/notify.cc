#include "daemon/notify.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "common/log.h"
#include "common/process.h"

namespace tether::daemon {
namespace {

// notify-send returns at once; a program that hangs is killed then.
constexpr auto kNotifyLimit = std::chrono::seconds(10);

bool Set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

// `name` found in PATH as an executable file, or "".
std::string InPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  for (size_t at = 0; at <= dirs.size();) {
    size_t end = dirs.find(':', at);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(at, end - at);
    at = end + 1;
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return "";
}

// An AppleScript string literal.
std::string AppleScriptString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::vector<std::string> NotifyCommand(const std::string& title, const std::string& body) {
#ifdef __APPLE__
  std::string osascript = InPath("osascript");
  if (osascript.empty()) return {};
  return {osascript, "-e",
          "display notification " + AppleScriptString(body) + " with title " +
              AppleScriptString(title)};
#else
  (void)AppleScriptString;
  if (!Set("DISPLAY") && !Set("WAYLAND_DISPLAY") && !Set("DBUS_SESSION_BUS_ADDRESS")) return {};
  std::string notify_send = InPath("notify-send");
  if (notify_send.empty()) return {};
  return {notify_send, "--app-name=tether", "--urgency=critical", title, body};
#endif
}

bool NotifyDesktop(const std::string& title, const std::string& body) {
  std::vector<std::string> command = NotifyCommand(title, body);
  if (command.empty()) {
    spdlog::debug("no desktop notification: no notify-send (or osascript) or no desktop session");
    return false;
  }
  std::string error = SpawnDetached(command, kNotifyLimit);
  if (!error.empty()) {
    spdlog::warn("desktop notification: cannot run {}: {}", command[0], error);
    return false;
  }
  spdlog::info("desktop notification sent ({})", command[0]);
  return true;
}

}  // namespace tether::daemon
