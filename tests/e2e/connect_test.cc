// End-to-end: connecting like ssh, and failing like it should: host keys, keys, ports.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using ConnectTest = TetherTest;

// `tether -F CONFIG up testhost` with a config changed by `options`.
CommandResult UpWith(TetherTest& t, Sshd& sshd, const ClientConfigOptions& options) {
  std::string config = t.scratch_.File("client.conf");
  Status s = sshd.WriteClientConfig(config, options);
  EXPECT_TRUE(s.ok());
  return RunTether(t.state_.path(), {"-F", config, "up", "testhost"});
}

TEST_F(ConnectTest, UnknownHostKeyIsRefusedWithItsFingerprint) {
  std::string empty = scratch_.File("empty_known_hosts");
  ASSERT_TRUE(WriteFile(empty, "").ok());
  ClientConfigOptions options;
  options.overrides["UserKnownHostsFile"] = empty;
  CommandResult r = UpWith(*this, sshd_, options);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("testhost"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("host key"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(sshd_.host_key_sha256_fingerprint()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ssh-keyscan"), std::string::npos) << "no advice: " << r.err;
  EXPECT_EQ(ReadFile(empty).value(), "") << "the key was added despite StrictHostKeyChecking yes";
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(ConnectTest, AcceptNewAddsAnUnknownKeyAndConnects) {
  std::string fresh = scratch_.File("fresh_known_hosts");
  ClientConfigOptions options;
  options.overrides["UserKnownHostsFile"] = fresh;
  options.overrides["StrictHostKeyChecking"] = "accept-new";
  CommandResult r = UpWith(*this, sshd_, options);
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto text = ReadFile(fresh);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("[127.0.0.1]:" + std::to_string(sshd_.port())), std::string::npos) << *text;
  EXPECT_NE(text->find(sshd_.host_pubkey_line()), std::string::npos) << *text;
}

TEST_F(ConnectTest, ChangedHostKeyIsRefusedEvenWithAcceptNew) {
  ClientConfigOptions options;
  options.overrides["UserKnownHostsFile"] = sshd_.mismatched_known_hosts_path();
  options.overrides["StrictHostKeyChecking"] = "accept-new";
  std::string before = ReadFile(sshd_.mismatched_known_hosts_path()).value();
  CommandResult r = UpWith(*this, sshd_, options);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("HOST KEY CHANGED"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(sshd_.host_key_sha256_fingerprint()), std::string::npos) << r.err;
  // The known_hosts line involved, by file and line number.
  EXPECT_NE(r.err.find(sshd_.mismatched_known_hosts_path() + ":1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ssh-keygen -R"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(sshd_.mismatched_known_hosts_path()).value(), before);
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(ConnectTest, WrongKeyIsAnAuthErrorThatSaysWhatWasTried) {
  ClientConfigOptions options;
  options.overrides["IdentityFile"] = sshd_.wrong_key_path();
  CommandResult r = UpWith(*this, sshd_, options);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("auth"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(sshd_.wrong_key_path()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("authorized_keys"), std::string::npos) << "no advice: " << r.err;
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(ConnectTest, NothingListeningIsAConnectError) {
  ClientConfigOptions options;
  options.overrides["Port"] = std::to_string(FreeTcpPort());
  CommandResult r = UpWith(*this, sshd_, options);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("connect:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(ConnectTest, UnresolvableHostIsAResolveError) {
  ClientConfigOptions options;
  options.overrides["HostName"] = "no-such-host.invalid";
  CommandResult r = UpWith(*this, sshd_, options);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("resolve:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no-such-host.invalid"), std::string::npos) << r.err;
}

TEST_F(ConnectTest, UserAtHostColonPortConnectsWithoutAConfigEntry) {
  // No Host block for 127.0.0.1: user, port, key and known_hosts come from the command
  // line and -o options.
  std::string config = scratch_.File("bare.conf");
  ASSERT_TRUE(WriteFile(config, "# nothing here\n").ok());
  CommandResult r = RunTether(
      state_.path(),
      {"-F", config, "up", sshd_.user() + "@127.0.0.1:" + std::to_string(sshd_.port()), "-i",
       sshd_.user_key_path(), "-o", "UserKnownHostsFile=" + sshd_.known_hosts_path(), "-o",
       "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  CommandResult down = RunTether(
      state_.path(), {"down", sshd_.user() + "@127.0.0.1:" + std::to_string(sshd_.port())});
  EXPECT_TRUE(down.ok()) << down.Describe();
  EXPECT_TRUE(StateFiles().empty());
}

}  // namespace
}  // namespace tether::testing
