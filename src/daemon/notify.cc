#include "daemon/notify.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "common/log.h"

extern char** environ;

namespace tether::daemon {
namespace {

constexpr auto kReapPoll = std::chrono::milliseconds(100);
constexpr int kReapPolls = 100;  // 10 s

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
  std::vector<char*> argv;
  for (auto& arg : command) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  for (int fd = 0; fd <= 2; ++fd) {
    ::posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
  }
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    spdlog::warn("desktop notification: cannot run {}: {}", command[0], std::strerror(rc));
    return false;
  }
  spdlog::info("desktop notification sent ({})", command[0]);
  std::thread([pid] {
    for (int i = 0; i < kReapPolls; ++i) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) != 0) return;
      std::this_thread::sleep_for(kReapPoll);
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    (void)::waitpid(pid, &status, 0);
  }).detach();
  return true;
}

}  // namespace tether::daemon
