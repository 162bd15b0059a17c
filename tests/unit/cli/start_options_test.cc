#include "cli/start_options.h"

#include <gtest/gtest.h>

namespace tether::cli {
namespace {

// A daemon's `status` reply, as far as start-time options go.
nlohmann::json Running() {
  return {{"user", "alice"},
          {"port", 2222},
          {"laptop_network", "public"},
          {"lanes", {{"wanted", 0}}},
          {"jump", {"bastion"}},
          {"identity_files", {"~/.ssh/work", "~/.ssh/id_ed25519"}},
          {"ssh_options", {"ServerAliveInterval=15", "Ciphers aes128-gcm@openssh.com"}}};
}

TEST(StartOptionConflicts, NothingGivenIsNoConflict) {
  EXPECT_FALSE(StartOptionConflicts("gpu", Running(), {}));
}

TEST(StartOptionConflicts, TheSameOptionsAgainAreNoConflict) {
  StartOptions same;
  same.laptop_network = "public";
  same.lanes = 0;
  same.user = "alice";
  same.port = 2222;
  same.jump = std::vector<std::string>{"bastion"};
  same.identity_files = {"~/.ssh/work"};
  same.ssh_options = {"serveraliveinterval 15", "Ciphers=aes128-gcm@openssh.com"};
  auto conflict = StartOptionConflicts("gpu", Running(), same);
  EXPECT_FALSE(conflict) << conflict->ToString();
}

TEST(StartOptionConflicts, ALaptopNetworkThatDiffersIsNamedWithTheRunningOneAndTheWayToApplyIt) {
  StartOptions given;
  given.laptop_network = "all";
  auto conflict = StartOptionConflicts("gpu", Running(), given);
  ASSERT_TRUE(conflict);
  EXPECT_NE(conflict->message.find("gpu is already up"), std::string::npos) << conflict->message;
  EXPECT_NE(conflict->message.find("--laptop-network=all (it runs --laptop-network=public)"),
            std::string::npos)
      << conflict->message;
  EXPECT_NE(conflict->hint.find("tether down gpu"), std::string::npos) << conflict->hint;
}

TEST(StartOptionConflicts, EveryOptionThatDiffersIsNamed) {
  StartOptions given;
  given.lanes = 2;
  given.user = "bob";
  given.port = 22;
  given.jump = std::vector<std::string>{"other"};
  given.identity_files = {"~/.ssh/id_ed25519", "~/.ssh/new"};
  given.ssh_options = {"ServerAliveInterval=30", "Compression=yes"};
  auto conflict = StartOptionConflicts("gpu", Running(), given);
  ASSERT_TRUE(conflict);
  const std::string& m = conflict->message;
  for (const char* part :
       {"--lanes 2 (it runs --lanes 0)", "-l bob (it logs in as alice)",
        "-p 22 (it runs port 2222)", "-J other (it runs -J bastion)", "-i ~/.ssh/new (",
        "-o ServerAliveInterval=30 (it runs -o ServerAliveInterval=15)",
        "-o Compression=yes (it runs without -o Compression)"}) {
    EXPECT_NE(m.find(part), std::string::npos) << part << " not in: " << m;
  }
  EXPECT_EQ(m.find("-i ~/.ssh/id_ed25519"), std::string::npos) << m;
}

TEST(StartOptionConflicts, AutoForwardOnADaemonThatDoesNotWatchIsNamed) {
  StartOptions given;
  given.auto_forward = true;
  auto conflict = StartOptionConflicts("gpu", Running(), given);
  ASSERT_TRUE(conflict);
  EXPECT_NE(conflict->message.find("--auto-forward"), std::string::npos) << conflict->message;
  nlohmann::json watching = Running();
  watching["auto_forward"] = {{"max", 20}, {"active", 1}};
  EXPECT_FALSE(StartOptionConflicts("gpu", watching, given));
}

TEST(StartOptionConflicts, AutoForwardRangesAndCapThatDifferAreNamed) {
  nlohmann::json watching = Running();
  watching["auto_forward"] = {{"max", 20}, {"allow", "8000-8999"}, {"deny", ""}, {"active", 0}};
  auto given_as = [](std::string allow, std::string deny, int max) {
    StartOptions given;
    given.auto_forward = true;
    given.auto_forward_allow = std::move(allow);
    given.auto_forward_deny = std::move(deny);
    given.auto_forward_max = max;
    return given;
  };
  auto none = StartOptionConflicts("gpu", watching, given_as("8000-8999", "", 20));
  EXPECT_FALSE(none) << none->ToString();

  StartOptions given = given_as("6006", "5432", 5);
  auto conflict = StartOptionConflicts("gpu", watching, given);
  ASSERT_TRUE(conflict);
  for (const char* part :
       {"--auto-forward-allow 6006 (it runs 8000-8999)", "--auto-forward-deny 5432 (it runs none)",
        "--auto-forward-max 5 (it runs 20)"}) {
    EXPECT_NE(conflict->message.find(part), std::string::npos)
        << part << " not in: " << conflict->message;
  }
  watching["auto_forward"]["allow"] = "";
  given = {};
  given.auto_forward = true;
  given.auto_forward_allow = "7000-7010";
  conflict = StartOptionConflicts("gpu", watching, given);
  ASSERT_TRUE(conflict);
  EXPECT_NE(conflict->message.find("--auto-forward-allow 7000-7010 (it runs any port)"),
            std::string::npos)
      << conflict->message;
}

TEST(StartOptionConflicts, AJumpHostOnADaemonWithoutOneIsAConflict) {
  nlohmann::json running = Running();
  running["jump"] = nlohmann::json::array();
  StartOptions given;
  given.jump = std::vector<std::string>{"bastion"};
  auto conflict = StartOptionConflicts("gpu", running, given);
  ASSERT_TRUE(conflict);
  EXPECT_NE(conflict->message.find("(it runs no jump host)"), std::string::npos)
      << conflict->message;
}

TEST(StartOptionConflicts, ProxyOpenOnAnOwnersServerProxyOnThatPortIsAConflict) {
  nlohmann::json running = Running();
  running["forwards"] = {{{"kind", "proxy"}, {"spec", "127.0.0.1:10808"}, {"access", "owner"}},
                         {{"kind", "remote"}, {"spec", "9000:localhost:3000"}}};
  StartOptions given;
  given.proxy_open_port = 10808;
  auto conflict = StartOptionConflicts("gpu", running, given);
  ASSERT_TRUE(conflict);
  EXPECT_NE(conflict->message.find("--proxy-open (its server proxy on port 10808 serves its owner "
                                   "alone)"),
            std::string::npos)
      << conflict->message;
  running["forwards"][0]["access"] = "anyone";
  EXPECT_FALSE(StartOptionConflicts("gpu", running, given));
  given.proxy_open_port = 10809;  // another port: a new proxy, made open
  running["forwards"][0]["access"] = "owner";
  EXPECT_FALSE(StartOptionConflicts("gpu", running, given));
}

}  // namespace
}  // namespace tether::cli
