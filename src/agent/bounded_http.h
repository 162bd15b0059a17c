// httplib::Server with a byte budget per request, because cpp-httplib 0.11 bounds only
// each header line (8 KiB) and the body (set_payload_max_length): a client may send
// header lines without end, and the library keeps them all in memory. On a shared GPU
// server any local user can reach a loopback port, so that is a way to have the agent,
// or a neighbour's training job, killed for memory.
//
// The class replaces httplib's per-connection loop (Server::process_and_close_socket, a
// virtual the library provides for this) with one that reads through BoundedStream: a
// request may consume at most `max_head_bytes + max_body_bytes` from the socket; past
// that its reads fail, httplib answers 400 or 413, and the connection is closed. The
// stream also keeps its read-ahead across the requests of a connection (httplib's own
// loop made a new stream, and lost pipelined bytes, per request).
//
// A handler can ask for its connection to be closed after its response, e.g. after a 401:
// CloseConnectionAfterResponse(), called on the worker thread running the handler.
#pragma once

#include <httplib.h>

#include <cstddef>

namespace tether::agent {

class BoundedHttpServer : public httplib::Server {
 public:
  BoundedHttpServer(size_t max_head_bytes, size_t max_body_bytes)
      : max_head_bytes_(max_head_bytes), max_body_bytes_(max_body_bytes) {}

  static void CloseConnectionAfterResponse();

 protected:
  bool process_and_close_socket(socket_t sock) override;

 private:
  const size_t max_head_bytes_;
  const size_t max_body_bytes_;
};

}  // namespace tether::agent
