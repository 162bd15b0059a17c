// Fuzz target for the control protocol's request path: ControlServer::HandleLine
// (src/control/control_server.cc) with the daemon's real handlers
// (HostDaemon::RegisterControlHandlers), on a daemon that was never started (no link, as
// during an outage). Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh,
// or over tests/fuzz/corpus/control_line/ as the ctest fuzz.control_line.
//
// Besides memory safety it checks the promises of docs/control-protocol.md: every line
// gets an object with a boolean "ok" (never an exception), a refusal carries an "error"
// string, and the reply serialises strictly (valid UTF-8); a forward the daemon lists can
// be cancelled by its own spec. After each input every forward
// a valid request added is cancelled again through the same handlers, so the daemon's
// state (and its bound ports) stays bounded over a long run.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/log.h"
#include "control/control_server.h"
#include "daemon/host_daemon.h"
#include "net/event_loop.h"

namespace {

using tether::control::ControlServer;
using tether::control::Json;

struct Fixture;
Fixture& TheFixture();

struct Fixture {
  Fixture() {
    spdlog::set_level(spdlog::level::off);  // a refusal per input would flood the output
    char dir[] = "/tmp/tether-control-fuzz-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    work_dir = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (work_dir < 0) std::abort();
    path = dir;
    std::atexit([] { std::filesystem::remove_all(TheFixture().path); });
    tether::config::HostConfig host;
    host.alias = "gpu";
    host.hostname = "127.0.0.1";
    daemon = std::make_unique<tether::daemon::HostDaemon>(host, tether::daemon::StateDir(dir));
    server = std::make_unique<ControlServer>(loop, tether::UniqueFd());
    daemon->RegisterControlHandlers(*server);
  }
  std::string path;   // the fixture's directory, removed at exit
  int work_dir = -1;  // where relative socket paths land (see below)
  tether::net::EventLoop loop;
  std::unique_ptr<tether::daemon::HostDaemon> daemon;
  std::unique_ptr<ControlServer> server;
};

Fixture& TheFixture() {
  static auto* fixture = new Fixture();  // never destroyed: the run ends by exit()
  return *fixture;
}

void Require(bool ok) {
  if (!ok) std::abort();
}

void CheckReply(const Json& reply) {
  Require(reply.is_object());
  auto ok = reply.find("ok");
  Require(ok != reply.end() && ok->is_boolean());
  if (!ok->get<bool>()) {
    auto error = reply.find("error");
    Require(error != reply.end() && error->is_string() && !error->get<std::string>().empty());
  }
  // As OnClient sends it, and strictly: every string in a reply came through the parser
  // or from the daemon, so it is valid UTF-8.
  (void)reply.dump(-1, ' ', false, Json::error_handler_t::replace);
  (void)reply.dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = TheFixture();
  std::string line(reinterpret_cast<const char*>(data), size);
  // No '/': a forward on a unix socket then listens on a relative path, in the fixture's
  // directory, never anywhere else on this machine (fuzzers run as root). The working
  // directory is the fixture's only while the daemon runs: libFuzzer opens its corpus
  // files by relative paths between inputs.
  for (char& c : line) {
    if (c == '/') c = '_';
  }
  const int cwd = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cwd < 0 || ::fchdir(f.work_dir) != 0) std::abort();
  CheckReply(f.server->HandleLine(line));  // an exception aborts the run
  // Undo what a valid request added, by the forwards' own specs.
  for (size_t round = 0; round < 64 && !f.daemon->forwards().empty(); ++round) {
    const auto& fwd = *f.daemon->forwards().front();
    Json cancel{{"cmd", "cancel"},
                {"kind", fwd.spec().kind == tether::config::ForwardKind::kRemote  ? "remote"
                         : fwd.spec().kind == tether::config::ForwardKind::kLocal ? "local"
                                                                                  : "dynamic"},
                {"spec", fwd.spec().ToString()}};
    Json reply = f.server->HandleLine(cancel.dump());
    CheckReply(reply);
    Require(reply.value("ok", false));
  }
  Require(f.daemon->forwards().empty());
  if (::fchdir(cwd) != 0) std::abort();
  ::close(cwd);
  return 0;
}
