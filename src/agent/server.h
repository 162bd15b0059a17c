// The agent's HTTP server: our bounded HTTP/1.1 server (http_server.h) wired to the status
// source, the lease and the token, on a unix socket (the default) or a TCP port. See api.h
// for the wire format.
//
// Every request, on every path, known or not, must carry "Authorization: Bearer <token>";
// the check runs before the router and before any body is read, so a client without the
// token learns nothing, not even which paths exist, and cannot make us buffer a body.
// Answers: 401 (no or wrong token), 400 (malformed request or hours), 404, 409 (extend
// without a lease), 413 (body over max_body_bytes), 414 (request line over 8 KiB; a header
// line may take 8 KiB too). Request line and headers may take 16 KiB in all
// (http_request.h, http_server.h). Refusals (401, 400, 413, 414) close the connection.
// On a unix socket, only this account's processes are served (SO_PEERCRED), and the token
// is still required.
//
// One log line per request: time, peer, method, path, status. Never headers, never the
// query string, so the token cannot reach the log even from a confused client.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "agent/lease.h"
#include "agent/status.h"
#include "common/result.h"

namespace tether::agent {

struct ServerConfig {
  // A unix socket's path (its directory checked by the caller, runtime_dir.h); when empty,
  // TCP on host:port.
  std::string socket_path;
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (Bind returns it)
  std::string token;
  std::string version;
  // Per socket read/write; a client that stalls longer than this is dropped. Also how
  // long a new connection has to send its whole request head.
  std::chrono::seconds io_timeout{5};
  // /extend's JSON is a few bytes; nothing else takes a body.
  size_t max_body_bytes = 4096;
  // Requests are short; this many let a scraper, a status poll and an extend run together
  // with room for idle keep-alive connections.
  size_t worker_threads = 8;
  // Connections held at once (waiting for their request, or being served); past that the
  // one waiting longest for its request is dropped. A handful of clients need a few
  // each; 64 idle descriptors cost nothing, and a flood cannot grow the agent.
  size_t max_connections = 64;
  std::function<void(const std::string& line)> log;  // thread-safe; default: stderr
};

// Thread-safe snapshot of everything but the lease.
using StatusSource = std::function<SystemStatus()>;

// Owns the listening socket. Bind once, then Serve (blocking) on one thread; Stop may be
// called from any thread, before or during Serve. `lease` must outlive the server.
class AgentServer {
 public:
  AgentServer(ServerConfig config, StatusSource status, LeaseKeeper& lease);
  ~AgentServer();
  AgentServer(const AgentServer&) = delete;
  AgentServer& operator=(const AgentServer&) = delete;

  // Binds and listens; returns the port (the chosen one when config.port is 0), or 0 on
  // a unix socket. The socket file is removed again when the server is destroyed.
  Result<int> Bind();
  // Serves until Stop().
  Status Serve();
  void Stop();

  // On a unix socket: whether its file is gone or replaced (logind empties
  // /run/user/UID when the account's last session ends, and the agent outlives it).
  bool SocketGone() const;
  // Binds a new socket file at the same path and serves it instead; the caller has made
  // sure of its directory again. Any thread, while Serve runs.
  Status Rebind();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tether::agent
