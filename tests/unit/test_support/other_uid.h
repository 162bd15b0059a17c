// A client of a local socket running as another account: for the tests that the daemon's
// sockets refuse peers of another uid. Forks; the child drops to `uid` (and its gid),
// connects, sends `request`, and reports what it read until EOF (bounded), while the
// parent keeps driving its event loop so the server can accept and answer.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>

namespace tether::test_support {

// nobody on Debian.
inline constexpr uid_t kNobodyUid = 65534;

struct OtherUidOutcome {
  bool ran = false;        // the child started and reported
  bool connected = false;  // connect(2) succeeded
  bool eof = false;        // the server closed the connection
  std::string received;    // what the server sent before closing (or until the bound)
};

// Runs the client as `uid`; `drive` runs the server's loop once (about 10 ms) and is
// called until the child ends or 5 s have passed. Needs root (setuid); tests skip
// otherwise.
inline OtherUidOutcome ConnectAsUid(const std::string& path, uid_t uid, const std::string& request,
                                    const std::function<void()>& drive) {
  OtherUidOutcome outcome;
  int report[2];
  if (::pipe(report) != 0) return outcome;
  pid_t pid = ::fork();
  if (pid < 0) return outcome;
  if (pid == 0) {
    ::close(report[0]);
    // Status byte: 'n' could not drop, 'c' could not connect, 'o' connected (then the
    // bytes read, then 'E' for EOF as the last byte when the server closed).
    auto say = [&](const std::string& s) { (void)!::write(report[1], s.data(), s.size()); };
    if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) {
      say("n");
      ::_exit(0);
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      say("c");
      ::_exit(0);
    }
    say("o");
    (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string got;
    bool eof = false;
    for (int i = 0; i < 200; ++i) {  // 200 x 10 ms
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        eof = true;
        break;
      }
      got.append(buf, static_cast<size_t>(n));
    }
    say(got + (eof ? "E" : ""));
    ::_exit(0);
  }
  ::close(report[1]);
  ::fcntl(report[0], F_SETFL, O_NONBLOCK);
  std::string bytes;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool ended = false;
  while (std::chrono::steady_clock::now() < deadline) {
    drive();
    char buf[4096];
    ssize_t n;
    while ((n = ::read(report[0], buf, sizeof buf)) > 0) bytes.append(buf, static_cast<size_t>(n));
    int status = 0;
    if (!ended && ::waitpid(pid, &status, WNOHANG) == pid) ended = true;
    if (ended && n == 0) break;
  }
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  ::close(report[0]);
  if (bytes.empty() || bytes[0] == 'n') return outcome;
  outcome.ran = true;
  outcome.connected = bytes[0] == 'o';
  if (outcome.connected) {
    outcome.eof = bytes.size() > 1 && bytes.back() == 'E';
    outcome.received = bytes.substr(1, bytes.size() - 1 - (outcome.eof ? 1 : 0));
  }
  return outcome;
}

}  // namespace tether::test_support
