// The daemon's control socket: JSON lines (docs/control-protocol.md). One request per
// line, one reply per request. Requests map to handlers through a table; anything
// malformed (not JSON, not an object, no "cmd", unknown "cmd", a line over
// kMaxLineBytes) gets {"ok": false, "error": "..."} and the daemon carries on.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

#include "common/result.h"
#include "common/unique_fd.h"
#include "net/acceptor.h"
#include "net/event_loop.h"

namespace tether::control {

// Longest request line we read; longer ones are refused and the client dropped.
inline constexpr size_t kMaxLineBytes = 64 * 1024;
// Most clients at once; further ones are closed at accept.
inline constexpr size_t kMaxClients = 64;

using Json = nlohmann::json;
// A handler gets the request and returns the reply's fields ("ok" is added).
// An Error becomes {"ok": false, "error": message, "hint": hint}.
using Handler = std::function<Result<Json>(const Json& request)>;

class ControlServer {
 public:
  ControlServer(net::EventLoop& loop, UniqueFd listener);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  void Register(const std::string& cmd, Handler handler);

  // Parses one line and runs its handler: the whole request-to-reply path, without
  // sockets (for tests and fuzzing).
  Json HandleLine(const std::string& line) const;

 private:
  struct Client {
    UniqueFd fd;
    std::string in;
    std::string out;
    bool closing = false;   // answer what is queued, then close
    bool draining = false;  // answered and shut down; discard input until EOF
    size_t discarded = 0;
  };
  void OnAccepted(UniqueFd conn);
  void OnClient(int fd, unsigned events);
  void Drop(int fd);

  net::EventLoop& loop_;
  UniqueFd listener_;
  std::unique_ptr<net::Acceptor> acceptor_;  // watches listener_
  std::map<std::string, Handler> handlers_;
  std::unordered_map<int, std::unique_ptr<Client>> clients_;
};

}  // namespace tether::control
