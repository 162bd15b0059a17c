// End-to-end: known_hosts as ssh reads it. HostKeyAlias for lookup and for saving, hashed
// names, several keys for one host, @revoked and @cert-authority lines; each case is also
// put to stock ssh with the same config, so tether's verdict is ssh's.
#include <gtest/gtest.h>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

class HostKeyTest : public TetherTest {
 protected:
  // Writes a client config whose known_hosts file holds `known_hosts`, with `extra`
  // overrides; returns the config's path.
  std::string Config(const std::string& known_hosts,
                     std::map<std::string, std::string> extra = {}) {
    known_hosts_ = scratch_.File("known_hosts");
    EXPECT_TRUE(WriteFile(known_hosts_, known_hosts).ok());
    ClientConfigOptions options;
    options.overrides = std::move(extra);
    options.overrides["UserKnownHostsFile"] = known_hosts_;
    options.overrides["GlobalKnownHostsFile"] = "/dev/null";
    std::string path = scratch_.File("client.conf");
    EXPECT_TRUE(sshd_.WriteClientConfig(path, options).ok());
    return path;
  }
  CommandResult Up(const std::string& config) {
    return RunTether(state_.path(), {"-F", config, "up", "testhost"});
  }
  // Stock ssh with the same config: its own connection (no master), one command.
  CommandResult StockSsh(const std::string& config) {
    return RunCommand({"ssh", "-F", config, "-o", "ControlMaster=no", "-o", "ControlPath=none",
                       "testhost", "true"},
                      {}, seconds(30));
  }
  // "[127.0.0.1]:PORT", the name the server is known under without an alias.
  std::string KnownName() const { return "[127.0.0.1]:" + std::to_string(sshd_.port()); }

  std::string known_hosts_;
};

TEST_F(HostKeyTest, HostKeyAliasIsTheNameLookedUp) {
  // Known under the alias only, as ssh would save it: the name and port do not appear.
  std::string config =
      Config("gpu-cluster " + sshd_.host_pubkey_line() + "\n", {{"HostKeyAlias", "gpu-cluster"}});
  EXPECT_TRUE(StockSsh(config).ok()) << StockSsh(config).Describe();
  CommandResult r = Up(config);
  EXPECT_TRUE(r.ok()) << r.Describe();

  // Without the alias the same file knows nothing of [127.0.0.1]:PORT: refused, as by ssh.
  StopAllTethers(state_.path());
  std::string plain = Config("gpu-cluster " + sshd_.host_pubkey_line() + "\n");
  EXPECT_FALSE(StockSsh(plain).ok());
  r = Up(plain);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no known host key for " + KnownName()), std::string::npos) << r.err;
}

TEST_F(HostKeyTest, AcceptNewSavesTheKeyUnderTheAliasAndSshReadsIt) {
  std::string config =
      Config("", {{"HostKeyAlias", "gpu-cluster"}, {"StrictHostKeyChecking", "accept-new"}});
  CommandResult r = Up(config);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(ReadFileOrEmpty(known_hosts_), "gpu-cluster " + sshd_.host_pubkey_line() + "\n");
  // What tether wrote, stock ssh accepts with StrictHostKeyChecking yes.
  std::string strict = scratch_.File("strict.conf");
  ClientConfigOptions options;
  options.overrides = {{"UserKnownHostsFile", known_hosts_},
                       {"GlobalKnownHostsFile", "/dev/null"},
                       {"HostKeyAlias", "gpu-cluster"}};
  ASSERT_TRUE(sshd_.WriteClientConfig(strict, options).ok());
  CommandResult ssh = StockSsh(strict);
  EXPECT_TRUE(ssh.ok()) << ssh.Describe();
}

TEST_F(HostKeyTest, HashedNamesAreFound) {
  std::string config = Config(KnownName() + " " + sshd_.host_pubkey_line() + "\n");
  CommandResult hash = RunCommand({"ssh-keygen", "-q", "-H", "-f", known_hosts_}, {}, seconds(10));
  ASSERT_TRUE(hash.ok()) << hash.Describe();
  std::string hashed = ReadFileOrEmpty(known_hosts_);
  ASSERT_EQ(hashed.rfind("|1|", 0), 0u) << hashed;
  ASSERT_EQ(hashed.find("127.0.0.1"), std::string::npos) << hashed;
  CommandResult r = Up(config);
  EXPECT_TRUE(r.ok()) << r.Describe();
}

TEST_F(HostKeyTest, AnyOfSeveralKeysForTheHostWillDo) {
  // A stale key of another type first, a wrong key of the same type, then the right one.
  CommandResult other =
      RunCommand({"ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", scratch_.File("other_ecdsa")},
                 {}, seconds(20));
  ASSERT_TRUE(other.ok()) << other.Describe();
  auto wrong = ReadFile(sshd_.mismatched_known_hosts_path());
  ASSERT_TRUE(wrong.ok());
  std::string ecdsa = ReadFileOrEmpty(scratch_.File("other_ecdsa.pub"));
  ecdsa = ecdsa.substr(0, ecdsa.rfind(' '));  // drop the comment
  std::string config = Config(KnownName() + " " + ecdsa + "\n" + *wrong + KnownName() + " " +
                              sshd_.host_pubkey_line() + "\n");
  EXPECT_TRUE(StockSsh(config).ok()) << StockSsh(config).Describe();
  CommandResult r = Up(config);
  EXPECT_TRUE(r.ok()) << r.Describe();
}

TEST_F(HostKeyTest, ARevokedKeyIsRefusedEvenWhenItIsAlsoKnown) {
  std::string config = Config(KnownName() + " " + sshd_.host_pubkey_line() + "\n" + "@revoked * " +
                              sshd_.host_pubkey_line() + "\n");
  CommandResult ssh = StockSsh(config);
  EXPECT_FALSE(ssh.ok()) << "stock ssh accepted a revoked key: " << ssh.Describe();
  CommandResult r = Up(config);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("REVOKED"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(known_hosts_ + ":2"), std::string::npos) << r.err;
  EXPECT_TRUE(StateFiles().empty());

  // A revoked line for another key changes nothing.
  StopAllTethers(state_.path());
  auto wrong = ReadFile(sshd_.mismatched_known_hosts_path());
  ASSERT_TRUE(wrong.ok());
  std::string other_key = wrong->substr(wrong->find(' ') + 1);  // "type base64\n"
  config = Config(KnownName() + " " + sshd_.host_pubkey_line() + "\n@revoked * " + other_key);
  r = Up(config);
  EXPECT_TRUE(r.ok()) << r.Describe();
}

TEST_F(HostKeyTest, ACertificateAuthorityLineDoesNotVouchForAPlainKey) {
  // The server offers its plain key; known_hosts trusts only a CA for it. ssh refuses that
  // under StrictHostKeyChecking yes, and so does tether, saying why the CA did not help.
  CommandResult ca =
      RunCommand({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", scratch_.File("host_ca")},
                 {}, seconds(20));
  ASSERT_TRUE(ca.ok()) << ca.Describe();
  std::string ca_pub = ReadFileOrEmpty(scratch_.File("host_ca.pub"));
  ASSERT_FALSE(ca_pub.empty());
  std::string config = Config("@cert-authority * " + ca_pub);
  EXPECT_FALSE(StockSsh(config).ok());
  CommandResult r = Up(config);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("no known host key for " + KnownName()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("certificate authority"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(known_hosts_ + ":1"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tether::testing
