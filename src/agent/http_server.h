// The agent's HTTP/1.1 server, bounded against slow and greedy clients. On a shared GPU
// server any local user can reach a loopback port, so without these bounds the agent, or a
// neighbour's training job, could be starved or killed for memory:
//
// - A request may take at most `max_head_bytes` of head (request line 8 KiB, each header
//   line 8 KiB: http_request.h) and `max_body_bytes` of body. Past the head's bound the
//   answer is 400 (414 for a long request line), past the body's 413, and the connection is
//   closed; a body is only read after `before_body` (the token check) let the request on.
// - One reception thread accepts and holds the connections until their request head is
//   complete, and only then gives them to one of `workers` threads; a worker serves the
//   request and gives a keep-alive connection back. A head not complete within
//   `head_timeout` of connecting (or `idle_timeout` after the previous answer) is dropped,
//   and at most `max_connections` are held: past that the one waiting longest for its head
//   is dropped for the newcomer. Workers then only ever wait for a body, or for a client
//   that does not read its answer: each read and write waits at most `io_timeout`.
// - A connection serves at most `max_requests` requests (the last answer says close).
// - Refusals (400, 413, 414, and whatever `before_body` answers) close the connection: a
//   body we declined to read is not taken for the next request.
// - On a unix socket the peer's uid (SO_PEERCRED) is checked at accept: another account's
//   connection is closed unanswered, whatever the socket file's mode.
// - With nothing to do, no thread wakes: an idle agent uses no CPU.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/http_request.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace tether::agent {

struct HttpLimits {
  size_t max_head_bytes = 16 * 1024;
  size_t max_body_bytes = 4096;
  size_t workers = 8;
  size_t max_connections = 64;
  size_t max_requests = 100;                     // on one keep-alive connection
  std::chrono::milliseconds head_timeout{5000};  // connect to the end of the first head
  std::chrono::milliseconds idle_timeout{5000};  // an answer to the end of the next head
  std::chrono::milliseconds io_timeout{5000};    // each read of a body, each write
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides the length and type
  bool close = false;  // close the connection after this answer
};

// Called on worker threads, several at once: each must be thread-safe.
struct HttpHandlers {
  // Before any body is read: an answer ends the request there (and its connection).
  std::function<std::optional<HttpResponse>(const HttpRequest&)> before_body;
  // The request with its body (empty without a Content-Length).
  std::function<HttpResponse(const HttpRequest&, const std::string& body)> handle;
  // The answer to a request the server refuses by itself (400, 413, 414).
  std::function<HttpResponse(int status, const std::string& reason)> refusal;
  // After each answer: who asked ("127.0.0.1", "::1", "uid 1000"), the request (null
  // when its head could not be parsed) and the status sent.
  std::function<void(const std::string& peer, const HttpRequest* request, int status)> log;
  // Anything else worth a log line (another account's connection, refused).
  std::function<void(const std::string& line)> note;
};

// "OK", "Not Found", ...: the reason phrase of a status line.
std::string_view StatusText(int status);

// Owns a listening socket and serves it: Serve() blocks on the calling thread (it becomes
// the reception) until Stop(), which any thread may call, before or during Serve.
class HttpServer {
 public:
  // `listener` is bound and listening. With `only_uid`, a unix socket's peers of any other
  // uid are closed at accept.
  HttpServer(UniqueFd listener, std::optional<uid_t> only_uid, HttpLimits limits,
             HttpHandlers handlers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status Serve();
  void Stop();
  // Serves `listener` from now on instead of the one it had (closed); any thread.
  void ReplaceListener(UniqueFd listener);

  // Connections held now (waiting for a head, queued, or being served); for tests.
  size_t connections() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tether::agent
