// httplib::Server bounded against slow and greedy clients, because cpp-httplib 0.11 is not:
//
// - It bounds only each header line (8 KiB) and the body (set_payload_max_length): a
//   client may send header lines without end, and the library keeps them all in memory.
//   Here a request may consume at most `max_head_bytes + max_body_bytes` from the socket;
//   past that its reads fail, httplib answers 400 or 413, and the connection is closed.
// - It hands every accepted connection to a worker at once, and the worker waits for the
//   request: eight clients that connect and say nothing (or a byte a second) hold all
//   eight workers, and a real request waits behind them. Here one reception thread holds
//   the connections until their request head is complete (the "\r\n\r\n"), and only then
//   gives them to a worker; a worker serves one request and gives a keep-alive connection
//   back. A head not complete within `head_timeout` of connecting (or `idle_timeout`
//   after the previous answer) is dropped, and at most `max_connections` are held: past
//   that the one waiting longest for its head is dropped for the newcomer. Workers then
//   only ever wait for a body, which comes after the token check (server.cc), or for a
//   client that does not read its answer (the write timeout).
//
// On a shared GPU server any local user can reach a loopback port, so without these the
// agent, or a neighbour's training job, could be starved or killed for memory.
//
// The class replaces httplib's per-connection loop (Server::process_and_close_socket, a
// virtual the library provides for this) and its task queue (new_task_queue is set here:
// do not set it). The stream keeps its read-ahead across the requests of a connection.
//
// A handler can ask for its connection to be closed after its response, e.g. after a 401:
// CloseConnectionAfterResponse(), called on the worker thread running the handler.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <string>

namespace tether::agent {

struct HttpLimits {
  size_t max_head_bytes = 16 * 1024;
  size_t max_body_bytes = 4096;
  size_t workers = 8;
  size_t max_connections = 64;
  std::chrono::milliseconds head_timeout{5000};  // connect to the end of the first head
  std::chrono::milliseconds idle_timeout{5000};  // an answer to the end of the next head
};

class BoundedHttpServer : public httplib::Server {
 public:
  explicit BoundedHttpServer(HttpLimits limits);

  static void CloseConnectionAfterResponse();

  // Connections held now (waiting for a head, queued, or being served); for tests.
  size_t connections() const;

 protected:
  // On the accept thread: hands the connection to the reception; never blocks.
  bool process_and_close_socket(socket_t sock) override;

 private:
  class Reception;
  // On a worker: serves the request whose head is in `buffered` (and what follows it).
  // Returns whether the connection stays open for another request; `buffered` is then
  // what was read past this request.
  bool ServeOne(int sock, std::string& buffered, size_t served);

  const HttpLimits limits_;
  // While the accept loop runs (it owns the task queue, which is the reception).
  std::atomic<Reception*> reception_{nullptr};
};

}  // namespace tether::agent
