// Who listens on a local TCP port: for `tether doctor`, which names the process that took
// a forward's port. Linux reads /proc (net/tcp, net/tcp6, then each process's fds); other
// systems answer nothing and doctor says it could not tell.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tether::cli {

struct PortOwner {
  pid_t pid = 0;        // 0 when the socket's process is not visible to us
  std::string command;  // its command line, spaces between arguments
};

// The processes listening on TCP `port` (any address; IPv4 and IPv6 apart, so a program
// on [::1]:8000 beside ours on 127.0.0.1:8000 shows up too). Empty when nothing listens;
// an owner with pid 0 is a socket whose process we may not see.
std::vector<PortOwner> FindPortOwners(uint16_t port);

}  // namespace tether::cli
