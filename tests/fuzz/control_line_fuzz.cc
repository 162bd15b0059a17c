// libFuzzer target for the control protocol's request path
// (ControlServer::HandleLine, src/control/control_server.cc).
//
// Not part of the CMake build. Build and run it with clang from the repository root:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I src \
//     tests/fuzz/control_line_fuzz.cc src/control/control_server.cc src/net/event_loop.cc \
//     src/net/socket.cc src/common/result.cc -lspdlog -lfmt -o /tmp/control_line_fuzz
//   /tmp/control_line_fuzz -max_total_time=60
//
// Besides memory safety it checks the promises of docs/control-protocol.md: every line
// gets an object with a boolean "ok" (never an exception), a refusal carries an "error"
// string, and the reply serialises the way the server sends it. The server has no
// listener and its loop never runs: HandleLine needs neither.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "control/control_server.h"
#include "net/event_loop.h"

namespace {

using tether::MakeError;
using tether::Result;
using tether::control::ControlServer;
using tether::control::Json;

// One server for the whole run, with a handler for each shape of reply.
ControlServer& Server() {
  static tether::net::EventLoop loop;
  static ControlServer* server = [] {
    auto* s = new ControlServer(loop, tether::UniqueFd());
    s->Register("ping", [](const Json&) -> Result<Json> { return Json{{"pong", true}}; });
    // Echoes the request back, so whatever the parser let through is serialised again.
    s->Register("echo", [](const Json& request) -> Result<Json> { return request; });
    s->Register("fail", [](const Json& request) -> Result<Json> {
      return MakeError("control", "failed: " + request.dump(), "a hint");
    });
    s->Register("count", [](const Json& request) -> Result<Json> { return Json(request.size()); });
    return s;
  }();
  return *server;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  const Json reply = Server().HandleLine(line);  // an exception aborts the run
  if (!reply.is_object()) std::abort();
  auto ok = reply.find("ok");
  if (ok == reply.end() || !ok->is_boolean()) std::abort();
  if (!ok->get<bool>()) {
    auto error = reply.find("error");
    if (error == reply.end() || !error->is_string() || error->get<std::string>().empty()) {
      std::abort();
    }
  }
  // As OnClient sends it; the strict form too, since every string in the reply came
  // through the parser and so is valid UTF-8.
  (void)reply.dump(-1, ' ', false, Json::error_handler_t::replace);
  (void)reply.dump();
  return 0;
}
