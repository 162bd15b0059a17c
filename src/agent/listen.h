// The --listen grammar, by example:
//   127.0.0.1:8080     IPv4 address and port
//   [::1]:8080         IPv6 address in brackets
//   localhost:8080     127.0.0.1 (no other name: a static binary resolves none, and
//                      binding refuses one, listener.h)
//   8080               port only: 127.0.0.1
//   127.0.0.1:0        any free port (the log says which)
// TCP is what --listen asks for (the default is a unix socket, runtime_dir.h); loopback is
// meant, anything else is allowed but logged as a warning: the token travels in clear HTTP.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace tether::agent {

struct ListenAddress {
  std::string host;
  int port = 0;

  bool operator==(const ListenAddress&) const = default;
};

Result<ListenAddress> ParseListenAddress(std::string_view text);

// 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(std::string_view host);

}  // namespace tether::agent
