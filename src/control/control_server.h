// The daemon's control socket: JSON lines (docs/control-protocol.md). One request per
// line, one reply per request. Requests map to handlers through a table; anything
// malformed (not JSON, not an object, no "cmd", unknown "cmd", a line over
// kMaxLineBytes) gets {"ok": false, "error": "..."} and the daemon carries on.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
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

// The reply a command owes its client when it cannot answer at once (a login waits for
// the server's next prompt): sent later, on the loop thread, at most once. Sending after
// the client has gone does nothing. Move-only.
class LaterReply {
 public:
  using Sink = std::function<void(Result<Json>)>;
  LaterReply(uint64_t client, Sink sink) : client_(client), sink_(std::move(sink)) {}
  LaterReply(LaterReply&&) = default;
  LaterReply& operator=(LaterReply&&) = default;
  LaterReply(const LaterReply&) = delete;
  LaterReply& operator=(const LaterReply&) = delete;

  void Send(Result<Json> reply);
  // Which connection it is owed to (0: none, a request given to HandleLine).
  uint64_t client() const { return client_; }
  bool sent() const { return !sink_; }

 private:
  uint64_t client_;
  Sink sink_;
};
// A handler that answers through `reply`, now or later. Until it does, the client's
// further requests wait (they are answered in order).
using LaterHandler = std::function<void(const Json& request, LaterReply reply)>;

class ControlServer {
 public:
  ControlServer(net::EventLoop& loop, UniqueFd listener);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  void Register(const std::string& cmd, Handler handler);
  void RegisterLater(const std::string& cmd, LaterHandler handler);
  // Told (on the loop thread) when a client goes away, owed a reply or not: what it
  // started (a login waiting for its answers) may be given up.
  void OnClientGone(std::function<void(uint64_t client)> fn) { on_gone_ = std::move(fn); }

  // Parses one line and runs its handler: the whole request-to-reply path, without
  // sockets (for tests and fuzzing).
  // A command answered later gets {"ok": false} here unless it answers at once.
  Json HandleLine(const std::string& line);

 private:
  struct Client {
    uint64_t id = 0;
    bool owed = false;  // a LaterReply is out: further lines wait
    UniqueFd fd;
    std::string in;
    std::string out;
    bool closing = false;   // answer what is queued, then close
    bool draining = false;  // answered and shut down; discard input until EOF
    size_t discarded = 0;
  };
  // The reply to `line` from `client` (0: none); nullopt when it is owed for later.
  std::optional<Json> HandleLineFrom(uint64_t client, const std::string& line);
  void OnAccepted(UniqueFd conn);
  void OnClient(int fd, unsigned events);
  // Answers the complete lines `c` holds (until one is owed), then sends and closes as
  // due. False when the client was dropped.
  bool Serve(Client& c);
  void Deliver(uint64_t client, Result<Json> reply);
  void Drop(int fd);

  net::EventLoop& loop_;
  UniqueFd listener_;
  std::unique_ptr<net::Acceptor> acceptor_;  // watches listener_
  std::map<std::string, Handler> handlers_;
  std::map<std::string, LaterHandler> later_handlers_;
  std::function<void(uint64_t)> on_gone_;
  std::unordered_map<int, std::unique_ptr<Client>> clients_;
  std::unordered_map<uint64_t, int> fd_of_;  // client id -> fd
  uint64_t next_client_ = 1;
  // LaterReplys hold it weakly: one sent after the server is gone does nothing.
  std::shared_ptr<ControlServer*> alive_ = std::make_shared<ControlServer*>(this);
};

}  // namespace tether::control
