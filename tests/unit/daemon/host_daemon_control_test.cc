// The daemon's real control handlers (HostDaemon::RegisterControlHandlers) against
// requests no client should send: every one gets {"ok": false, "error": ...} naming the
// field and what it must be, and the daemon still answers afterwards. The daemon is never
// started (no link), which the handlers treat as an outage.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "control/control_server.h"
#include "daemon/host_daemon.h"
#include "net/event_loop.h"

namespace tether::daemon {
namespace {

using control::Json;

config::HostConfig TestHost() {
  config::HostConfig host;
  host.alias = "gpu";
  host.hostname = "127.0.0.1";
  return host;
}

class DaemonControlTest : public ::testing::Test {
 protected:
  DaemonControlTest()
      : dir_(MakeDir()), daemon_(TestHost(), StateDir(dir_)), server_(loop_, UniqueFd()) {
    daemon_.RegisterControlHandlers(server_);
  }
  ~DaemonControlTest() override { std::filesystem::remove_all(dir_); }

  static std::string MakeDir() {
    char dir[] = "/tmp/tether-daemon-control-XXXXXX";
    return ::mkdtemp(dir) != nullptr ? dir : "/tmp";
  }

  std::string dir_;
  HostDaemon daemon_;
  net::EventLoop loop_;
  control::ControlServer server_;
};

struct BadRequest {
  const char* name;
  std::string line;
  const char* error_contains;  // the field and the type it must have
};

// Every field of every command, of each wrong type; missing fields; huge and
// out-of-range values; integers in disguise.
const std::vector<BadRequest>& BadRequests() {
  static const std::vector<BadRequest> cases = {
      // forward
      {"forward: kind is a number", R"({"cmd":"forward","kind":1,"spec":"8000:localhost:80"})",
       "\"kind\" must be a string, got 1"},
      {"forward: kind is null", R"({"cmd":"forward","kind":null,"spec":"8000:localhost:80"})",
       "\"kind\" must be a string, got null"},
      {"forward: kind is an object", R"({"cmd":"forward","kind":{},"spec":"8000:localhost:80"})",
       "\"kind\" must be a string, got an object"},
      {"forward: kind is an array", R"({"cmd":"forward","kind":["local"],"spec":"1:h:2"})",
       "\"kind\" must be a string, got an array"},
      {"forward: kind is a boolean", R"({"cmd":"forward","kind":true,"spec":"1:h:2"})",
       "\"kind\" must be a string, got a boolean"},
      {"forward: kind is unknown", R"({"cmd":"forward","kind":"sideways","spec":"1:h:2"})",
       "\"kind\" must be \"local\", \"remote\" or \"dynamic\""},
      {"forward: kind is missing", R"({"cmd":"forward","spec":"8000:localhost:80"})",
       "\"kind\" is missing"},
      {"forward: spec is a number", R"({"cmd":"forward","kind":"local","spec":8000})",
       "\"spec\" must be a string, got 8000"},
      {"forward: spec is null", R"({"cmd":"forward","kind":"local","spec":null})",
       "\"spec\" must be a string, got null"},
      {"forward: spec is an array", R"({"cmd":"forward","kind":"local","spec":["8000"]})",
       "\"spec\" must be a string, got an array"},
      {"forward: spec is missing", R"({"cmd":"forward","kind":"local"})", "\"spec\" is missing"},
      {"forward: spec is huge",
       R"({"cmd":"forward","kind":"local","spec":")" + std::string(60000, '8') + "\"}",
       "\"spec\" is 60000 bytes long; at most 4096"},
      {"forward: spec is not a spec", R"({"cmd":"forward","kind":"local","spec":"x:y:z:w:v"})", ""},
      // cancel
      {"cancel: kind is a number", R"({"cmd":"cancel","kind":2,"spec":"8000"})",
       "\"kind\" must be a string, got 2"},
      {"cancel: kind is unknown", R"({"cmd":"cancel","kind":"up","spec":"8000"})",
       "\"kind\" must be \"local\", \"remote\" or \"dynamic\""},
      {"cancel: spec is a number", R"({"cmd":"cancel","kind":"local","spec":8000})",
       "\"spec\" must be a string, got 8000"},
      {"cancel: spec is a number, no kind", R"({"cmd":"cancel","spec":8000})",
       "\"spec\" must be a string, got 8000"},
      {"cancel: spec is an object", R"({"cmd":"cancel","spec":{"port":8000}})",
       "\"spec\" must be a string, got an object"},
      {"cancel: spec is missing", R"({"cmd":"cancel","kind":"local"})", "\"spec\" is missing"},
      {"cancel: nothing listens there", R"({"cmd":"cancel","spec":"8000"})",
       "no forward listens on"},
      // proxy
      {"proxy: port is a string", R"({"cmd":"proxy","port":"x"})",
       "\"port\" must be an integer in 1..65535, got a string"},
      {"proxy: port is digits in a string", R"({"cmd":"proxy","port":"10808"})",
       "\"port\" must be an integer in 1..65535, got a string"},
      {"proxy: port is a float", R"({"cmd":"proxy","port":10808.5})",
       "\"port\" must be an integer in 1..65535, got 10808.5"},
      {"proxy: port is an integral float", R"({"cmd":"proxy","port":10808.0})",
       "\"port\" must be an integer in 1..65535"},
      {"proxy: port is huge", R"({"cmd":"proxy","port":1e300})",
       "\"port\" must be an integer in 1..65535"},
      {"proxy: port is 2^32 + 1 (1 if truncated)", R"({"cmd":"proxy","port":4294967297})",
       "\"port\" must be an integer in 1..65535, got 4294967297"},
      {"proxy: port is 2^64 - 1", R"({"cmd":"proxy","port":18446744073709551615})",
       "\"port\" must be an integer in 1..65535, got 18446744073709551615"},
      {"proxy: port is negative", R"({"cmd":"proxy","port":-1})",
       "\"port\" must be an integer in 1..65535, got -1"},
      {"proxy: port is 0", R"({"cmd":"proxy","port":0})",
       "\"port\" must be an integer in 1..65535"},
      {"proxy: port is 65536", R"({"cmd":"proxy","port":65536})",
       "\"port\" must be an integer in 1..65535"},
      {"proxy: port is null", R"({"cmd":"proxy","port":null})",
       "\"port\" must be an integer in 1..65535, got null"},
      {"proxy: port is a boolean", R"({"cmd":"proxy","port":true})",
       "\"port\" must be an integer in 1..65535, got a boolean"},
      {"proxy: open is a string", R"({"cmd":"proxy","open":"yes"})",
       "\"open\" must be true or false, got a string"},
      {"proxy: open is a number", R"({"cmd":"proxy","open":1})",
       "\"open\" must be true or false, got 1"},
      {"proxy: open is null", R"({"cmd":"proxy","open":null})",
       "\"open\" must be true or false, got null"},
      {"proxy: upstream is a number", R"({"cmd":"proxy","upstream":7890})",
       "\"upstream\" must be a string, got 7890"},
      {"proxy: upstream is an object", R"({"cmd":"proxy","upstream":{"host":"x"}})",
       "\"upstream\" must be a string, got an object"},
      {"proxy: upstream is huge",
       R"({"cmd":"proxy","upstream":"http://)" + std::string(10000, 'a') + "\"}",
       "\"upstream\" is 10007 bytes long; at most 4096"},
      {"proxy: upstream is not a URL", R"({"cmd":"proxy","upstream":"::::"})", ""},
      // env: no server proxy on this daemon
      {"env without a server proxy", R"({"cmd":"env","port":"x"})", "has no server proxy"},
      // the envelope
      {"cmd is a number", R"({"cmd":7})", "\"cmd\""},
      {"cmd is huge", R"({"cmd":")" + std::string(50000, 'c') + "\"}", "unknown cmd"},
      {"not an object", R"(["forward","local","8000:localhost:80"])", "not a JSON object"},
      {"a bare string", R"("status")", "not a JSON object"},
      {"invalid UTF-8", "{\"cmd\":\"forward\",\"kind\":\"local\",\"spec\":\"\xff\"}",
       "not valid JSON"},
      {"a NUL byte", std::string("{\"cmd\":\"status\"}\0x", 18), "NUL"},
      {"deeply nested", std::string(10000, '[') + std::string(10000, ']'), "not a JSON object"},
  };
  return cases;
}

TEST_F(DaemonControlTest, RefusesEveryMalformedRequestNamingTheFieldAndType) {
  for (const BadRequest& c : BadRequests()) {
    Json reply;
    ASSERT_NO_THROW(reply = server_.HandleLine(c.line)) << c.name;
    ASSERT_TRUE(reply.is_object()) << c.name;
    EXPECT_EQ(reply.value("ok", true), false) << c.name << ": " << reply.dump();
    ASSERT_TRUE(reply.contains("error") && reply["error"].is_string())
        << c.name << ": " << reply.dump();
    const auto error = reply["error"].get<std::string>();
    EXPECT_FALSE(error.empty()) << c.name;
    EXPECT_NE(error.find(c.error_contains), std::string::npos) << c.name << ": " << error;
    EXPECT_NO_THROW((void)reply.dump()) << c.name;  // valid UTF-8, as sent
  }
}

TEST_F(DaemonControlTest, AddsNothingForARefusedRequest) {
  for (const BadRequest& c : BadRequests()) (void)server_.HandleLine(c.line);
  EXPECT_TRUE(daemon_.forwards().empty());
}

TEST_F(DaemonControlTest, StillAnswersAfterEveryMalformedRequest) {
  for (const BadRequest& c : BadRequests()) {
    (void)server_.HandleLine(c.line);
    const Json reply = server_.HandleLine(R"({"cmd":"status"})");
    ASSERT_EQ(reply.value("ok", false), true) << "after " << c.name << ": " << reply.dump();
    EXPECT_EQ(reply.value("host", ""), "gpu");
  }
}

TEST_F(DaemonControlTest, TakesTheFieldsWhenTheyHaveTheirTypes) {
  // Well-typed requests go through to the forward code. Remote forwards need no listener
  // here: they wait for the link, which this daemon never has.
  Json added =
      server_.HandleLine(R"({"cmd":"forward","kind":"remote","spec":"19000:localhost:3000"})");
  ASSERT_EQ(added.value("ok", false), true) << added.dump();
  EXPECT_EQ(added.value("added", false), true);
  Json proxy = server_.HandleLine(
      R"({"cmd":"proxy","port":10809,"open":false,"upstream":"socks5://127.0.0.1:7890"})");
  ASSERT_EQ(proxy.value("ok", false), true) << proxy.dump();
  EXPECT_EQ(proxy["forward"].value("kind", ""), "proxy") << proxy.dump();
  ASSERT_EQ(daemon_.forwards().size(), 2u);
  Json env = server_.HandleLine(R"({"cmd":"env"})");
  EXPECT_EQ(env.value("port", 0), 10809) << env.dump();

  Json cancelled = server_.HandleLine(R"({"cmd":"cancel","spec":"19000"})");
  EXPECT_EQ(cancelled.value("ok", false), true) << cancelled.dump();
  EXPECT_EQ(daemon_.forwards().size(), 1u);
}

}  // namespace
}  // namespace tether::daemon
