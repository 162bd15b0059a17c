// The control API against a fake daemon: the status reply's shape field by field, and
// what each command asks of the daemon. "read_ahead" is the process's own
// (ssh::ReadAheadStatus()): the tests set its switch.
#include "daemon/control_api.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/event_loop.h"
#include "ssh/read_ahead.h"
#include "test_support/scoped_env.h"

namespace tether::daemon {
namespace {

using control::Json;

class FakeDaemon : public ControlApi::Daemon {
 public:
  DaemonStatus Snapshot() const override { return status; }
  const std::vector<std::unique_ptr<forward::Forward>>& forwards() const override {
    return forwards_;
  }
  Result<forward::Forward*> AddForwardSpec(const config::ForwardSpec& spec, bool*) override {
    added.push_back(spec.ToFlagString());
    return MakeError("forward", "the fake cannot listen");
  }
  forward::Forward* FindForward(const config::ForwardSpec&) override { return nullptr; }
  void RemoveForward(forward::Forward&) override {}
  Status EnableProxy(const ProxyOptions& options) override {
    proxy_ports.push_back(options.port);
    return MakeError("proxy", "the fake has no server");
  }
  const proxy::Credentials& proxy_credentials() const override { return credentials_; }
  void StopSoon(const std::string& why) override { stops.push_back(why); }

  DaemonStatus status;
  std::vector<std::string> added;
  std::vector<uint16_t> proxy_ports;
  std::vector<std::string> stops;

 private:
  std::vector<std::unique_ptr<forward::Forward>> forwards_;
  proxy::Credentials credentials_;
};

class ControlApiTest : public ::testing::Test {
 protected:
  ControlApiTest() : api_(daemon_, "gpu"), server_(loop_, UniqueFd()) { api_.Register(server_); }

  FakeDaemon daemon_;
  ControlApi api_;
  net::EventLoop loop_;
  control::ControlServer server_;
  test_support::ScopedEnv read_ahead_switch_{ssh::kReadAheadSwitch, nullptr};
};

TEST_F(ControlApiTest, StatusSaysEveryFieldOfTheDaemon) {
  DaemonStatus& st = daemon_.status;
  st.host = "gpu";
  st.user = "ada";
  st.hostname = "10.0.0.7";
  st.port = 2222;
  st.state = LinkState::kReconnecting;
  st.pid = 4242;
  st.uptime = std::chrono::seconds(90);
  st.rtt = std::chrono::milliseconds(12);
  st.reconnects = 3;
  st.last_error = "no answer from the server for 6 s";
  st.cipher = "chacha20-poly1305@openssh.com";
  st.remote_system = "Linux x86_64";
  st.window_budget_used = 65536;
  st.server_requests = 1;
  st.lanes_wanted = 2;
  st.lanes.push_back(LaneStatus{1, Lane::State::kUp, 4, 9, ""});
  st.sessions_live = 5;
  st.sessions_waiting = 2;
  st.connections = 2;
  st.control_path =
      ControlPathStatus{"/home/ada/.ssh/sockets/ada@10.0.0.7-2222", ControlPathState::kHeld, 777,
                        "is held by an OpenSSH master, pid 777"};
  st.laptop_network = "private";
  st.jump = {"bastion"};
  st.identity_files = {"~/.ssh/work"};
  st.ssh_options = {"ServerAliveInterval=15"};
  read_ahead_switch_.Set("0");
  const Json want = Json::parse(R"({
    "host": "gpu", "state": "reconnecting", "pid": 4242, "user": "ada",
    "hostname": "10.0.0.7", "port": 2222, "uptime_s": 90, "rtt_ms": 12, "reconnects": 3,
    "last_error": "no answer from the server for 6 s",
    "cipher": "chacha20-poly1305@openssh.com", "remote_system": "Linux x86_64",
    "read_ahead": "off", "window_budget_used": 65536, "server_requests": 1,
    "lanes": {"wanted": 2, "off": "",
              "open": [{"number": 1, "state": "up", "live": 4, "streams": 9, "error": ""}]},
    "sessions": {"live": 5, "waiting": 2, "connections": 2},
    "control_path": {"path": "/home/ada/.ssh/sockets/ada@10.0.0.7-2222", "state": "held",
                     "pid": 777, "detail": "is held by an OpenSSH master, pid 777"},
    "laptop_network": "private", "jump": ["bastion"], "identity_files": ["~/.ssh/work"],
    "ssh_options": ["ServerAliveInterval=15"], "auto_forward": null, "fast_exec": null,
    "forwards": []})");
  EXPECT_EQ(api_.StatusJson(), want) << api_.StatusJson().dump();
  Json reply = server_.HandleLine(R"({"cmd":"status"})");
  EXPECT_TRUE(reply["ok"].get<bool>());
  reply.erase("ok");
  EXPECT_EQ(reply, want);
}

TEST_F(ControlApiTest, StatusSaysTheReadAheadsSelfCheckWhenNotSwitchedOff) {
  // This test binary's libssh reads through tether's recv and poll (read_ahead_test.cc).
  EXPECT_EQ(api_.StatusJson()["read_ahead"], "active");
}

TEST_F(ControlApiTest, StatusHasANullRttBeforeAnyKeepaliveAnswered) {
  EXPECT_TRUE(api_.StatusJson()["rtt_ms"].is_null());
}

TEST_F(ControlApiTest, StopAsksTheDaemonToStopAfterTheReply) {
  Json reply = server_.HandleLine(R"({"cmd":"stop"})");
  EXPECT_TRUE(reply["ok"].get<bool>()) << reply.dump();
  EXPECT_EQ(daemon_.stops, std::vector<std::string>{"tether down"});
}

TEST_F(ControlApiTest, EnvWithoutAServerProxySaysHowToStartOne) {
  Json reply = server_.HandleLine(R"({"cmd":"env"})");
  EXPECT_FALSE(reply["ok"].get<bool>());
  EXPECT_NE(reply.dump().find("tether up gpu --proxy"), std::string::npos) << reply.dump();
}

TEST_F(ControlApiTest, CancelOfAForwardNobodyRunsNamesTheAddressAndStatus) {
  Json reply = server_.HandleLine(R"({"cmd":"cancel","kind":"local","spec":"8000"})");
  EXPECT_FALSE(reply["ok"].get<bool>());
  EXPECT_NE(reply.dump().find("no forward listens on"), std::string::npos) << reply.dump();
  EXPECT_NE(reply.dump().find("tether status gpu"), std::string::npos) << reply.dump();
}

TEST_F(ControlApiTest, ForwardAndProxyHandTheParsedRequestToTheDaemon) {
  Json fwd = server_.HandleLine(R"({"cmd":"forward","kind":"local","spec":"8000:localhost:80"})");
  EXPECT_FALSE(fwd["ok"].get<bool>());
  EXPECT_EQ(daemon_.added, std::vector<std::string>{"-L 8000:localhost:80"});
  Json proxy = server_.HandleLine(R"({"cmd":"proxy","port":10900})");
  EXPECT_FALSE(proxy["ok"].get<bool>());
  EXPECT_EQ(daemon_.proxy_ports, std::vector<uint16_t>{10900});
}

}  // namespace
}  // namespace tether::daemon
