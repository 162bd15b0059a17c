// End-to-end: jump hosts (ProxyJump, -J), done natively: the session to the target runs
// over a direct-tcpip channel of the session to the jump host. Every hop is a real sshd
// with its own host key, user key and known_hosts.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

class JumpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SshdOptions verbose;
    // At DEBUG1 sshd logs each channel it opens: the proof that traffic went through it.
    verbose.extra_config = {"LogLevel DEBUG1"};
    ASSERT_TRUE(jump_.Start(verbose).ok());
    ASSERT_TRUE(jump2_.Start(verbose).ok());
    ASSERT_TRUE(target_.Start().ok());
  }
  void TearDown() override {
    if (HasFailure()) {
      auto log = ReadFile(state_.File("target.log"));
      if (log.ok())
        std::cerr << "daemon log:\n" << log->substr(log->size() > 5000 ? log->size() - 5000 : 0);
      std::cerr << "jump sshd log:\n" << jump_.LogTail(2000);
    }
    StopAllTethers(state_.path());
  }

  // An ssh_config with Host jump, jump2 and target (target's extra lines added).
  std::string WriteConfig(const std::vector<std::string>& target_lines,
                          const std::string& jump_known_hosts = "",
                          const std::map<std::string, std::string>& target_overrides = {}) {
    std::string text;
    auto block = [&](const Sshd& sshd, ClientConfigOptions options) {
      std::string path = scratch_.File(options.host + ".conf");
      EXPECT_TRUE(sshd.WriteClientConfig(path, options).ok());
      text += ReadFile(path).value() + "\n";
    };
    ClientConfigOptions jump;
    jump.host = "jump";
    if (!jump_known_hosts.empty()) jump.overrides["UserKnownHostsFile"] = jump_known_hosts;
    block(jump_, jump);
    ClientConfigOptions jump2;
    jump2.host = "jump2";
    block(jump2_, jump2);
    ClientConfigOptions target;
    target.host = "target";
    target.extra_lines = target_lines;
    target.overrides = target_overrides;
    block(target_, target);
    std::string path = scratch_.File("ssh_config");
    EXPECT_TRUE(WriteFile(path, text).ok());
    return path;
  }
  CommandResult Tether(const std::string& config, std::vector<std::string> args) {
    args.insert(args.begin(), {"-F", config});
    return RunTether(state_.path(), args);
  }
  nlohmann::json Host(const std::string& config) {
    auto j = nlohmann::json::parse(Tether(config, {"status", "--json"}).out, nullptr, false);
    if (!j.is_object() || j["hosts"].empty()) return nlohmann::json::object();
    return j["hosts"][0];
  }
  static size_t ChannelsOpened(const Sshd& sshd) {
    auto log = ReadFile(sshd.log_path());
    size_t n = 0;
    for (size_t at = 0; log.ok() && (at = log->find("ctype direct-tcpip", at)) != std::string::npos;
         ++at) {
      ++n;
    }
    return n;
  }

  Sshd jump_, jump2_, target_;
  TempDir state_, scratch_;
};

TEST_F(JumpTest, ReachesTheTargetThroughProxyJumpAndForwardsThroughIt) {
  HttpServer http("behind the login node\n");
  std::string config = WriteConfig({"ProxyJump jump"});
  uint16_t local = FreeTcpPort();
  CommandResult up =
      Tether(config, {"-v", "up", "target", "-L",
                      std::to_string(local) + ":127.0.0.1:" + std::to_string(http.port())});
  ASSERT_TRUE(up.ok()) << up.Describe();
  EXPECT_NE(up.err.find("via jump"), std::string::npos) << up.err;
  auto r = HttpGet(local);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->body, "behind the login node\n");
  EXPECT_GE(ChannelsOpened(jump_), 1u) << "the jump host opened no channel";
  EXPECT_EQ(ChannelsOpened(jump2_), 0u);
  EXPECT_EQ(Host(config)["state"], "up");
  EXPECT_EQ(Host(config)["remote_system"].get<std::string>().rfind("Linux", 0), 0u);
}

TEST_F(JumpTest, GoesThroughTwoHopsGivenWithDashJ) {
  SourceServer source(8u << 20, 3);
  std::string config = WriteConfig({});
  uint16_t local = FreeTcpPort();
  CommandResult up =
      Tether(config, {"up", "-J", "jump,jump2", "target", "-L",
                      std::to_string(local) + ":127.0.0.1:" + std::to_string(source.port())});
  ASSERT_TRUE(up.ok()) << up.Describe();
  auto got = ReadFromSource(local);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->sha256_hex, source.expected_sha256());
  EXPECT_GE(ChannelsOpened(jump_), 1u);   // jump -> jump2
  EXPECT_GE(ChannelsOpened(jump2_), 1u);  // jump2 -> target
}

// Each hop's relay thread sleeps while nothing moves (it ticked 10 times a second before):
// through two jump hosts an idle daemon wakes about as often as a direct one (its 250 ms
// link tick).
TEST_F(JumpTest, AnIdleLinkThroughTwoJumpHostsWakesOnlyAFewTimesASecond) {
  constexpr int kWindowSeconds = 4;
  constexpr double kWakeupsPerSecondBound = 10;
  std::string config = WriteConfig({});
  CommandResult up = Tether(config, {"up", "-J", "jump,jump2", "target"});
  ASSERT_TRUE(up.ok()) << up.Describe();
  auto host = Host(config);
  ASSERT_TRUE(host["pid"].is_number()) << host.dump();
  const pid_t pid = host["pid"].get<pid_t>();
  // Past start-up's own work: a keepalive answered means the link has settled.
  ASSERT_TRUE(WaitFor([&] { return Host(config)["rtt_ms"].is_number(); }, seconds(10)));
  auto before = ProcessRuns(pid);
  ASSERT_TRUE(before.ok()) << before.error().ToString();
  std::this_thread::sleep_for(seconds(kWindowSeconds));
  auto after = ProcessRuns(pid);
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  double per_second = static_cast<double>(*after - *before) / kWindowSeconds;
  std::cerr << "idle daemon through two jump hosts: " << per_second << " wake-ups/s\n";
  EXPECT_LT(per_second, kWakeupsPerSecondBound);
  // And it still carries a command at once.
  CommandResult r = Tether(config, {"exec", "target", "echo", "awake"});
  EXPECT_EQ(r.out, "awake\n") << r.Describe();
}

TEST_F(JumpTest, AChangedHostKeyOfTheJumpHostIsRefusedAndNamesIt) {
  std::string config = WriteConfig({"ProxyJump jump"}, jump_.mismatched_known_hosts_path());
  CommandResult up = Tether(config, {"up", "target"});
  EXPECT_FALSE(up.ok());
  EXPECT_NE(up.err.find("jump"), std::string::npos) << up.err;
  EXPECT_NE(up.err.find("host key"), std::string::npos) << up.err;
  EXPECT_EQ(ChannelsOpened(jump_), 0u) << "a channel went through an unverified jump host";
}

TEST_F(JumpTest, ATargetTheJumpHostCannotReachIsAClearError) {
  std::string config =
      WriteConfig({"ProxyJump jump"}, "", {{"Port", std::to_string(FreeTcpPort())}});
  CommandResult up = Tether(config, {"up", "target"});
  EXPECT_FALSE(up.ok());
  EXPECT_NE(up.err.find("jump host jump could not reach"), std::string::npos) << up.err;
}

TEST_F(JumpTest, ReconnectsThroughTheJumpHostAfterEitherSshdRestarts) {
  HttpServer http;
  std::string config = WriteConfig({"ProxyJump jump"});
  uint16_t server_port = FreeTcpPort();
  ASSERT_TRUE(
      Tether(config, {"up", "target", "-R",
                      std::to_string(server_port) + ":127.0.0.1:" + std::to_string(http.port())})
          .ok());
  ASSERT_TRUE(HttpGet(server_port).ok());
  ASSERT_TRUE(target_.Restart().ok());
  ASSERT_TRUE(
      WaitFor([&] { return Host(config).value("reconnects", 0) == 1 && HttpGet(server_port).ok(); },
              seconds(20)))
      << Host(config).dump();
  ASSERT_TRUE(jump_.Restart().ok());
  ASSERT_TRUE(
      WaitFor([&] { return Host(config).value("reconnects", 0) == 2 && HttpGet(server_port).ok(); },
              seconds(20)))
      << Host(config).dump();
}

}  // namespace
}  // namespace tether::testing
