// The server side of a shell loop (forward/server_loop.h), played by a test: Runner() is
// the loop's runner and keeps the descriptors each run gets; Says writes to the loop and
// lets it read, Hears reads what the loop asked. Loop thread only.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "common/unique_fd.h"
#include "forward/server_loop.h"
#include "net/event_loop.h"

namespace tether::forward {

// The real script instead of a played one: `command` run by sh on this machine with the
// loop's descriptors as its stdin, stdout and stderr (blocking, as the daemon's session
// relays them and a shell's `read` waits). Returns its pid, for the test to end.
inline pid_t RunScriptHere(const std::string& command, UniqueFd in, UniqueFd out, UniqueFd err) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in.get(), 0);
    ::dup2(out.get(), 1);
    ::dup2(err.get(), 2);
    for (int fd = 0; fd < 3; ++fd) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

class ScriptedServer {
 public:
  explicit ScriptedServer(net::EventLoop& loop) : loop_(loop) {}

  ServerLoop::Runner Runner() {
    return [this](const std::string& command, UniqueFd in, UniqueFd out, UniqueFd err,
                  ServerLoop::Ended ended) {
      ++runs_;
      command_ = command;
      in_ = std::move(in);
      out_ = std::move(out);
      err_ = std::move(err);
      this->ended = std::move(ended);
    };
  }

  // A few rounds of the loop.
  void Drive(int rounds = 5) {
    for (int i = 0; i < rounds; ++i) ASSERT_TRUE(loop_.RunOnce(std::chrono::milliseconds(10)).ok());
  }
  void Says(const std::string& text) {
    ASSERT_EQ(::write(out_.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
    Drive();
  }
  std::string Hears() {
    Drive();
    std::string got;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out_.get(), buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
    return got;
  }

  int runs() const { return runs_; }
  const std::string& command() const { return command_; }
  // The script's end of the last run's stdin and stdout.
  int fd() const { return out_.get(); }
  // The last run's `ended`: the test ends its session.
  ServerLoop::Ended ended;

 private:
  net::EventLoop& loop_;
  int runs_ = 0;
  std::string command_;
  UniqueFd in_, out_, err_;
};

}  // namespace tether::forward
