// The order of login methods, as ssh picks it from the configuration.
#include "ssh/auth_methods.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tether::ssh {
namespace {

using M = AuthMethod;

struct OrderCase {
  const char* what;
  std::vector<std::string> preferred;
  bool pubkey;
  bool kbdint;
  bool password;
  std::vector<AuthMethod> want;
};

TEST(AuthOrder, IsSshsOrderOrPreferredAuthenticationsLessWhatIsTurnedOff) {
  const std::vector<OrderCase> cases = {
      {"defaults", {}, true, true, true, {M::kPublicKey, M::kKeyboardInteractive, M::kPassword}},
      {"password off", {}, true, true, false, {M::kPublicKey, M::kKeyboardInteractive}},
      {"pubkey off", {}, false, true, true, {M::kKeyboardInteractive, M::kPassword}},
      {"preferred order",
       {"password", "publickey"},
       true,
       true,
       true,
       {M::kPassword, M::kPublicKey}},
      {"unknown names skipped, duplicates once",
       {"gssapi-with-mic", "keyboard-interactive", "hostbased", "keyboard-interactive"},
       true,
       true,
       true,
       {M::kKeyboardInteractive}},
      {"preferred but turned off", {"password", "publickey"}, true, true, false, {M::kPublicKey}},
  };
  for (const OrderCase& c : cases) {
    config::HostConfig host;
    host.preferred_authentications = c.preferred;
    host.pubkey_authentication = c.pubkey;
    host.kbd_interactive_authentication = c.kbdint;
    host.password_authentication = c.password;
    EXPECT_EQ(AuthOrder(host), c.want) << c.what;
  }
}

TEST(AuthOrder, SaysWhyAMethodIsLeftOut) {
  config::HostConfig host;
  host.preferred_authentications = {"publickey", "password"};
  host.password_authentication = false;
  EXPECT_EQ(WhyNotInOrder(host, M::kPublicKey), "");
  EXPECT_EQ(WhyNotInOrder(host, M::kPassword), "PasswordAuthentication is no");
  EXPECT_EQ(WhyNotInOrder(host, M::kKeyboardInteractive), "not in PreferredAuthentications");
  EXPECT_EQ(AuthMethodName(M::kKeyboardInteractive), "keyboard-interactive");
}

}  // namespace
}  // namespace tether::ssh
