// End-to-end: tether agent install copies the agent over the daemon's connection to a
// real sshd, starts it, keeps its token; up --agent forwards it and status --remote reads
// the server's status through the tunnel with that token.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <filesystem>

#include <optional>

#include <nlohmann/json.hpp>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

// The permission bits of `path`, or nullopt when it does not exist.
std::optional<unsigned> FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return st.st_mode & 07777;
}

class AgentTest : public TetherTest {
 protected:
  void TearDown() override {
    // The agent runs on the "server" (this machine) as a daemon of its own: end it by PID.
    auto pid = ReadFile(AgentDir() + "/agent.pid");
    if (pid.ok() && std::atoi(pid->c_str()) > 1) TerminatePid(std::atoi(pid->c_str()));
    TetherTest::TearDown();
  }
  std::string AgentDir() { return scratch_.File("server-home"); }
  // The laptop's TMPDIR: install's scratch copy is made and removed there.
  std::string LaptopTmp() {
    std::string dir = scratch_.File("laptop-tmp");
    ::mkdir(dir.c_str(), 0700);
    return dir;
  }
  CommandResult T(std::vector<std::string> args) {
    args.insert(args.begin(), {"-F", sshd_.config_path()});
    return RunTether(
        state_.path(), args, seconds(90),
        {{"TETHER_CONFIG", scratch_.File("laptop/config.toml")}, {"TMPDIR", LaptopTmp()}});
  }
};

TEST_F(AgentTest, InstallForwardAndReadTheServersStatusThroughTheTunnel) {
  uint16_t port = FreeTcpPort();
  CommandResult install =
      T({"agent", "install", "testhost", "--dir", AgentDir(), "--port", std::to_string(port)});
  ASSERT_TRUE(install.ok()) << install.Describe();
  EXPECT_NE(install.out.find("tether-agent 0.1.0 installed"), std::string::npos) << install.out;
  // The stripped copy was made in a private directory of its own, and nothing is left.
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(LaptopTmp(), ec)) << "left in TMPDIR";
  // The binary and its token are on the server, private; the token is on the laptop too.
  EXPECT_TRUE(FileMode(AgentDir() + "/bin/tether-agent").has_value());
  auto record = ReadFile(scratch_.File("laptop/agents/testhost.json"));
  ASSERT_TRUE(record.ok());
  auto token = nlohmann::json::parse(*record)["token"].get<std::string>();
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(ReadFile(AgentDir() + "/agent-token").value().substr(0, 64), token);
  EXPECT_EQ(FileMode(scratch_.File("laptop/agents/testhost.json")).value_or(0) & 0777, 0600);

  ASSERT_TRUE(T({"up", "testhost", "--agent=" + std::to_string(port)}).ok());
  CommandResult status = T({"status", "testhost", "--remote", "--json"});
  ASSERT_TRUE(status.ok()) << status.Describe();
  auto j = nlohmann::json::parse(status.out);
  const auto& remote = j["hosts"][0]["remote"];
  ASSERT_TRUE(remote.contains("cpu")) << remote.dump();
  EXPECT_GT(remote["cpu"]["count"].get<int>(), 0);
  EXPECT_TRUE(remote["memory"]["total_bytes"].get<uint64_t>() > 0);
  EXPECT_TRUE(remote.contains("gpus"));
  // The people's view names the load.
  CommandResult table = T({"status", "--remote"});
  EXPECT_NE(table.out.find("testhost: load"), std::string::npos) << table.out;

  // Without the token, the agent refuses (straight at it, on the server's loopback).
  CommandResult anonymous =
      RunCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                  "http://127.0.0.1:" + std::to_string(port) + "/status"});
  EXPECT_EQ(anonymous.out, "401");
  // A wrong token on the laptop: a clear error, not garbage.
  auto rec = nlohmann::json::parse(*record);
  rec["token"] = std::string(64, '0');
  ASSERT_TRUE(WriteFile(scratch_.File("laptop/agents/testhost.json"), rec.dump()).ok());
  table = T({"status", "--remote"});
  EXPECT_NE(table.out.find("refused our token"), std::string::npos) << table.out;
}

TEST_F(AgentTest, StatusRemoteWithoutAnAgentSaysWhatToRun) {
  ASSERT_TRUE(T({"up", "testhost"}).ok());
  CommandResult table = T({"status", "--remote"});
  EXPECT_TRUE(table.ok());
  EXPECT_NE(table.out.find("tether agent install testhost"), std::string::npos) << table.out;
}

TEST_F(AgentTest, InstallFromAHomeWithNothingInItKeepsTheTokenWhereStatusFindsIt) {
  // A new laptop: no ~/.config, ~/.local or ~/.ssh yet (every directory is made on the way).
  const std::string home = scratch_.File("fresh-home");
  ASSERT_EQ(::mkdir(home.c_str(), 0700), 0);
  const Env env = {
      {"HOME", home}, {"XDG_CONFIG_HOME", ""}, {"TETHER_CONFIG", ""}, {"TMPDIR", LaptopTmp()}};
  auto tether = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"-F", sshd_.config_path()});
    return RunTether(state_.path(), args, seconds(90), env);
  };
  uint16_t port = FreeTcpPort();
  CommandResult install =
      tether({"agent", "install", "testhost", "--dir", AgentDir(), "--port", std::to_string(port)});
  ASSERT_TRUE(install.ok()) << install.Describe();
  const std::string record = home + "/.config/tether/agents/testhost.json";
  auto text = ReadFile(record);
  ASSERT_TRUE(text.ok()) << "install said: " << install.out;
  EXPECT_EQ(nlohmann::json::parse(*text)["token"].get<std::string>().size(), 64u);
  EXPECT_EQ(FileMode(record).value_or(0), 0600u);
  for (const char* dir : {"/.config", "/.config/tether", "/.config/tether/agents"}) {
    EXPECT_EQ(FileMode(home + dir).value_or(0), 0700u) << dir;
  }
  ASSERT_TRUE(tether({"up", "testhost", "--agent=" + std::to_string(port)}).ok());
  CommandResult status = tether({"status", "testhost", "--remote"});
  EXPECT_NE(status.out.find("testhost: load"), std::string::npos) << status.Describe();
}

TEST_F(AgentTest, ATokenThatCannotBeKeptIsAnErrorNotASuccess) {
  // The config directory's parent is a file: nothing can be made below it.
  const std::string blocker = scratch_.File("blocker");
  ASSERT_TRUE(WriteFile(blocker, "not a directory").ok());
  uint16_t port = FreeTcpPort();
  CommandResult install = RunTether(
      state_.path(),
      {"-F", sshd_.config_path(), "agent", "install", "testhost", "--dir", AgentDir(), "--port",
       std::to_string(port)},
      seconds(90), {{"TETHER_CONFIG", blocker + "/tether/config.toml"}, {"TMPDIR", LaptopTmp()}});
  EXPECT_FALSE(install.ok()) << install.Describe();
  EXPECT_EQ(install.out.find("token kept"), std::string::npos) << install.out;
  EXPECT_NE(install.err.find("could not be kept"), std::string::npos) << install.Describe();
}

}  // namespace
}  // namespace tether::testing
