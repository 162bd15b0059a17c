// End-to-end: --auto-forward when the server is this very machine (sshd on loopback, the
// test bed's usual shape, and a login to localhost): the laptop's own auto forward
// listens on the server's port space too, as the owner's, and must not forward itself
// again and again.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using namespace std::chrono_literals;

class AutoForwardLoopbackTest : public TetherTest {};

TEST_F(AutoForwardLoopbackTest, ItsOwnListenerOnTheSameMachineIsNotForwardedAgain) {
  HttpServer http("on this machine\n");
  const uint16_t port = http.port();
  const std::string toml = scratch_.File("config.toml");
  ASSERT_TRUE(WriteFile(toml, "[settings]\nauto_forward_allow = \"" + std::to_string(port) + "-" +
                                  std::to_string(port + 8) + "\"\n")
                  .ok());
  const Env env = {{"TETHER_CONFIG", toml}};
  CommandResult up =
      RunTether(state_.path(),
                {"-F", sshd_.config_path(), "-v", "up", "testhost", "--auto-forward"}, 30s, env);
  ASSERT_TRUE(up.ok()) << up.Describe();
  auto autos = [&] {
    std::vector<nlohmann::json> out;
    auto j = nlohmann::json::parse(RunTether(state_.path(), {"status", "--json"}, 10s, env).out,
                                   nullptr, false);
    if (!j.is_object() || !j["hosts"].is_array() || j["hosts"].empty()) return out;
    for (const auto& f : j["hosts"][0].value("forwards", nlohmann::json::array())) {
      if (f.contains("auto") && f["auto"].is_object()) out.push_back(f["auto"]);
    }
    return out;
  };
  ASSERT_TRUE(WaitFor([&] { return !autos().empty(); }, 8s));
  std::this_thread::sleep_for(4500ms);  // two more reads of the server's listeners
  auto found = autos();
  ASSERT_EQ(found.size(), 1u) << nlohmann::json(found).dump();
  EXPECT_EQ(found[0]["server_port"], port);
  const uint16_t local = found[0].value("local_port", uint16_t{0});
  EXPECT_GT(local, port);  // its own port is the server's listener, on this machine
  auto got = HttpGet(local);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->body, "on this machine\n");
}

// Another connection's remote forward (stock `ssh -R` of the same account): sshd's own
// listener, which a remote forward of ours whose answer went astray would leave too. Never
// forwarded by itself; a server of the account's beside it is.
TEST_F(AutoForwardLoopbackTest, SshdsOwnListenerOfAnotherConnectionIsNotForwarded) {
  HttpServer target("the laptop\n");
  HttpServer app("an app\n");
  const uint16_t remote = FreeTcpPort();
  ASSERT_NE(remote, 0);
  // Only these two: the test's other listeners are the owner's too, on this machine.
  const std::string toml = scratch_.File("config.toml");
  ASSERT_TRUE(WriteFile(toml, "[settings]\nauto_forward_allow = \"" + std::to_string(remote) + "," +
                                  std::to_string(app.port()) + "\"\n")
                  .ok());
  const Env env = {{"TETHER_CONFIG", toml}};
  auto ssh = SpawnProcess({"ssh", "-F", sshd_.config_path(), "-o", "ControlPath=none", "-N", "-R",
                           std::to_string(remote) + ":127.0.0.1:" + std::to_string(target.port()),
                           "testhost"});
  ASSERT_TRUE(ssh.ok()) << ssh.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return PortAccepts(remote); }, 10s));
  CommandResult up =
      RunTether(state_.path(),
                {"-F", sshd_.config_path(), "-v", "up", "testhost", "--auto-forward"}, 30s, env);
  ASSERT_TRUE(up.ok()) << up.Describe();
  auto servers = [&] {
    std::set<uint16_t> out;
    auto j = nlohmann::json::parse(RunTether(state_.path(), {"status", "--json"}, 10s, env).out,
                                   nullptr, false);
    if (!j.is_object() || !j["hosts"].is_array() || j["hosts"].empty()) return out;
    for (const auto& f : j["hosts"][0].value("forwards", nlohmann::json::array())) {
      if (f.contains("auto") && f["auto"].is_object())
        out.insert(f["auto"].value("server_port", 0));
    }
    return out;
  };
  ASSERT_TRUE(WaitFor([&] { return servers().count(app.port()) == 1; }, 8s));
  std::this_thread::sleep_for(4500ms);  // two more reads of the server's listeners
  EXPECT_EQ(servers(), std::set<uint16_t>{app.port()});
  ssh->Terminate();
}

}  // namespace
}  // namespace tether::testing
