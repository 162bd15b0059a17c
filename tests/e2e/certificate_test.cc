// End-to-end: OpenSSH user certificates, as ssh uses them. sshd trusts a certificate
// authority of the test's own (TrustedUserCAKeys) and authorizes no plain key
// (AuthorizedKeysFile none): only a certificate of the user's key gets in, found beside the
// key (IDENTITY-cert.pub) or named by CertificateFile.
#include <gtest/gtest.h>

#include <string>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

class CertificateTest : public TetherTest {
 protected:
  CertificateTest() {
    CommandResult ca = RunCommand({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                                   "tether-test-ca", "-f", ca_.File("ca")});
    EXPECT_TRUE(ca.ok()) << ca.Describe();
    sshd_options_.extra_config = {"TrustedUserCAKeys " + ca_.File("ca.pub"),
                                  "AuthorizedKeysFile none"};
  }

  // Signs the test bed's user key for its user, valid over `validity` (ssh-keygen -V);
  // ssh-keygen writes KEY-cert.pub beside the key.
  std::string Sign(const std::string& validity) {
    CommandResult r =
        RunCommand({"ssh-keygen", "-q", "-s", ca_.File("ca"), "-I", "tether-test", "-n",
                    sshd_.user(), "-V", validity, sshd_.user_key_path() + ".pub"});
    EXPECT_TRUE(r.ok()) << r.Describe();
    return sshd_.user_key_path() + "-cert.pub";
  }

  TempDir ca_;
};

TEST_F(CertificateTest, WithoutACertificateThePlainKeyIsRefused) {
  CommandResult up = Tether({"up", "testhost"});
  EXPECT_FALSE(up.ok()) << up.Describe();
  EXPECT_NE(up.err.find("ermission denied"), std::string::npos) << up.Describe();
}

TEST_F(CertificateTest, TheKeysOwnCertificateBesideItLogsIn) {
  Sign("-5m:+1h");
  CommandResult up = Tether({"-v", "up", "testhost"});
  ASSERT_TRUE(up.ok()) << up.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  CommandResult who = Tether({"exec", "testhost", "--", "echo", "in"});
  EXPECT_EQ(who.out, "in\n") << who.Describe();
  // sshd says which way it let us in.
  EXPECT_NE(sshd_.LogTail(20000).find("ED25519-CERT"), std::string::npos) << sshd_.LogTail();
}

TEST_F(CertificateTest, ACertificateFileElsewhereIsUsedForTheKeyItCertifies) {
  const std::string cert = Sign("-5m:+1h");
  const std::string moved = scratch_.File("certs-user-cert.pub");
  ASSERT_EQ(::rename(cert.c_str(), moved.c_str()), 0);
  ClientConfigOptions options;
  options.extra_lines = {"CertificateFile " + moved};
  ASSERT_TRUE(sshd_.WriteClientConfig(scratch_.File("ssh_config"), options).ok());
  CommandResult up =
      RunTether(state_.path(), {"-F", scratch_.File("ssh_config"), "up", "testhost"});
  ASSERT_TRUE(up.ok()) << up.Describe() << "\nsshd log:\n" << sshd_.LogTail();
}

TEST_F(CertificateTest, AnExpiredCertificateIsRefusedAndNamed) {
  const std::string cert = Sign("20200101:20200102");
  CommandResult up = Tether({"up", "testhost"});
  EXPECT_FALSE(up.ok()) << up.Describe();
  EXPECT_NE(up.err.find(cert), std::string::npos) << "the error names what was offered\n"
                                                  << up.Describe();
}

}  // namespace
}  // namespace tether::testing
