#include "cli/server_ports.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace tether::cli {
namespace {

// A server where we are uid 1000 and mallory (1001) listens on 127.0.0.1:10808 (0x2A38)
// and [::]:10809; our own sshd child listens on 127.0.0.1:8000 (0x1F40); sshd (root) on
// 0.0.0.0:22; a connection in time-wait to 10810, mallory's client on port 50000
// connected to 8000, and garbage among the lines.
const char* const kSquatted =
    "Welcome to the GPU cluster\n"
    "uid 1000\n"
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
    "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        "
    "0 1598 1 00000000909bcfea 100 0 0 10 0\n"
    "   1: 0100007F:2A38 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        "
    "0 73121 1 0000000000000000 100 0 0 10 0\n"
    "   2: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        "
    "0 73200 1 0000000000000000 100 0 0 10 0\n"
    "   3: 0100007F:9F1F 0100007F:2A3A 06 00000000:00000000 03:00001031 00000000     0        "
    "0 0 3 000000001a88c22d\n"
    "   7: 0100007F:C350 0100007F:1F40 01 00000000:00000000 00:00000000 00000000  1001        "
    "0 80000 1 0000000000000000 20 4 30 10 -1\n"
    "   4: garbage line with many many fields in it 1 2 3 4 5\n"
    "   5: 0100007F:ZZZZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1002 0 7 1\n"
    "   6: 0100007F:2A3B 00000000:0000 0A 00000000:00000000\n"
    "\x01\xff binary\n"
    "  sl  local_address                         remote_address                        st "
    "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 00000000000000000000000000000000:2A39 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000  1001        0 73300 1 0000000000000000 100 0 0 "
    "10 0\n";

ServerListeners Parsed(const std::string& text) {
  auto l = ParseServerListeners(text);
  EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.error().message);
  return l.ok() ? *l : ServerListeners{};
}

TEST(ParseServerListeners, KeepsListeningSocketsWithAProcessAndSkipsTheRest) {
  ServerListeners l = Parsed(kSquatted);
  EXPECT_TRUE(l.readable);
  EXPECT_EQ(l.our_uid, 1000u);
  std::vector<std::pair<uint16_t, uint32_t>> seen;
  for (const auto& e : l.listening) seen.emplace_back(e.local_port, e.uid);
  const std::vector<std::pair<uint16_t, uint32_t>> want = {
      {22, 0}, {10808, 1001}, {8000, 1000}, {10809, 1001}};
  EXPECT_EQ(seen, want);
}

TEST(ParseServerListeners, AServerWithoutTheTableIsUnreadableAndAMissingGreetingAnError) {
  auto none = ParseServerListeners("motd\nnone\n");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->readable);
  EXPECT_EQ(WhoHolds(*none, 10808, false).holding, PortHolding::kUnknown);
  EXPECT_FALSE(FreePortAfter(*none, 10808));
  EXPECT_FALSE(ParseServerListeners("").ok());
  EXPECT_FALSE(ParseServerListeners("   0: 0100007F:2A38 00000000:0000 0A\n").ok());
  EXPECT_FALSE(ParseServerListeners("uid -1\n").ok());
  EXPECT_FALSE(ParseServerListeners("uid 99999999999\n").ok());
}

TEST(WhoHolds, TellsFreeOursOurAccountAndAnotherAccountApart) {
  ServerListeners l = Parsed(kSquatted);
  struct Case {
    uint16_t port;
    bool active;
    PortHolding holding;
    uint32_t uid;
  };
  const std::vector<Case> cases = {
      {10808, false, PortHolding::kOther, 1001},  // squatted on 127.0.0.1
      {10808, true, PortHolding::kOther, 1001},   // whatever our daemon believes
      {10809, true, PortHolding::kOther, 1001},   // squatted on [::]
      {8000, true, PortHolding::kOurs, 1000},
      {8000, false, PortHolding::kOurAccount, 1000},
      {22, false, PortHolding::kOther, 0},
      {10810, false, PortHolding::kFree, 0},  // only a time-wait socket
      {10811, false, PortHolding::kFree, 0},  // only on a garbled line
      {50000, false, PortHolding::kFree, 0},  // a client's port is not a listener
  };
  for (const auto& c : cases) {
    PortHolder h = WhoHolds(l, c.port, c.active);
    EXPECT_EQ(h.holding, c.holding) << c.port;
    EXPECT_EQ(h.uid, c.uid) << c.port;
  }
}

TEST(WhoHolds, AnotherAccountBesideOursStillCountsAsSquatted) {
  std::string text = std::string("uid 1000\n") +
                     "   0: 0100007F:2A38 00000000:0000 0A 00000000:00000000 00:00000000 "
                     "00000000  1000 0 500 1\n"
                     "   0: 00000000000000000000000001000000:2A38 "
                     "00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 "
                     "00000000  1001 0 501 1\n";
  EXPECT_EQ(WhoHolds(Parsed(text), 10808, true).holding, PortHolding::kOther);
}

TEST(FreePortAfter, SkipsEveryListenedPortOnAnyAddress) {
  ServerListeners l = Parsed(kSquatted);
  EXPECT_EQ(FreePortAfter(l, 10807), 10810);  // 10808 and 10809 are mallory's
  EXPECT_EQ(FreePortAfter(l, 21), 23);
  EXPECT_EQ(FreePortAfter(l, 65535), std::nullopt);
}

TEST(DescribeHolder, NamesThePortTheUidAndTheAccount) {
  EXPECT_EQ(DescribeHolder(10808, {PortHolding::kOther, 1001, "mallory"}),
            "port 10808 on the server is held by uid 1001 (mallory), another account");
  EXPECT_EQ(DescribeHolder(10808, {PortHolding::kOther, 1001, ""}),
            "port 10808 on the server is held by uid 1001, another account");
  EXPECT_EQ(DescribeHolder(10808, {PortHolding::kFree, 0, ""}), "port 10808 on the server is free");
}

// The seam: commands answered from a table of recorded outputs.
using Answers = std::map<std::string, std::string>;

class RecordedServer {
 public:
  explicit RecordedServer(std::map<std::string, std::string> answers)
      : answers_(std::move(answers)) {}
  ServerCommand Runner() {
    return [this](const std::string& command) -> Result<std::string> {
      asked.push_back(command);
      auto it = answers_.find(command);
      if (it == answers_.end()) return MakeError("test", "no such command");
      return it->second;
    };
  }
  std::vector<std::string> asked;

 private:
  std::map<std::string, std::string> answers_;
};

TEST(CheckServerPort, NamesTheSquatterAndOffersAFreePort) {
  RecordedServer server(
      Answers{{kListenersCommand, kSquatted},
              {"getent passwd 1001", "mallory:x:1001:1001::/home/mallory:/bin/sh\n"}});
  auto check = CheckServerPort(server.Runner(), 10808, false);
  ASSERT_TRUE(check.ok()) << check.error().message;
  EXPECT_EQ(check->holder.holding, PortHolding::kOther);
  EXPECT_EQ(check->holder.account, "mallory");
  EXPECT_EQ(check->free_port, 10810);
}

TEST(CheckServerPort, AsksNoNameForOurOwnPortAndPassesOnAFailure) {
  RecordedServer server(Answers{{kListenersCommand, kSquatted}});
  auto check = CheckServerPort(server.Runner(), 8000, true);
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->holder.holding, PortHolding::kOurs);
  EXPECT_EQ(server.asked.size(), 1u);
  RecordedServer down(Answers{});
  EXPECT_FALSE(CheckServerPort(down.Runner(), 8000, true).ok());
  // A name that cannot be read leaves the uid alone.
  RecordedServer no_getent(Answers{{kListenersCommand, kSquatted}});
  auto uid_only = CheckServerPort(no_getent.Runner(), 10808, false);
  ASSERT_TRUE(uid_only.ok());
  EXPECT_EQ(uid_only->holder.uid, 1001u);
  EXPECT_EQ(uid_only->holder.account, "");
}

// What `env` and `run` do with the daemon's word and the server's table.
TEST(RefuseProxyAddress, HandsOutOnlyAnAddressOurListenerHoldsAlone) {
  auto check = [](PortHolding holding, uint32_t uid, const char* account) -> Result<PortCheck> {
    PortCheck c;
    c.holder = {holding, uid, account};
    c.free_port = 10810;
    return c;
  };
  struct Case {
    const char* state;
    Result<PortCheck> check;
    const char* refusal;  // "" when handed out
  };
  const std::vector<Case> cases = {
      {"listening", check(PortHolding::kOurs, 1000, ""), ""},
      // No table there: the daemon's word stands (sshd bound 127.0.0.1 for us).
      {"listening", check(PortHolding::kUnknown, 0, ""), ""},
      // The daemon has not noticed yet that its link died and the port was taken.
      {"listening", check(PortHolding::kOther, 1001, "mallory"),
       "port 10808 on the server is held by uid 1001 (mallory), another account"},
      {"listening", check(PortHolding::kFree, 0, ""), "nothing listens on port 10808"},
      {"listening", Result<PortCheck>(MakeError("remote", "the link is down")),
       "cannot tell who holds port 10808 on the server: the link is down"},
      {"retrying", check(PortHolding::kOther, 1001, ""),
       "port 10808 on the server is held by uid 1001, another account"},
      {"retrying", check(PortHolding::kOurAccount, 1000, ""),
       "does not listen on the server's port 10808 (retrying): refused"},
      {"waiting for the link", Result<PortCheck>(MakeError("remote", "down")),
       "does not listen on the server's port 10808 (waiting for the link)"},
  };
  for (const auto& c : cases) {
    auto refused = RefuseProxyAddress("gpu", 10808, c.state, "refused", c.check);
    if (std::string(c.refusal).empty()) {
      EXPECT_FALSE(refused) << c.state << ": " << refused->message;
      continue;
    }
    ASSERT_TRUE(refused) << c.state << " " << c.refusal;
    EXPECT_NE(refused->message.find(c.refusal), std::string::npos) << refused->message;
  }
  // The free port is offered.
  auto squatted =
      RefuseProxyAddress("gpu", 10808, "retrying", "", check(PortHolding::kOther, 1001, "mallory"));
  ASSERT_TRUE(squatted);
  EXPECT_NE(squatted->hint.find("tether up gpu --proxy=10810"), std::string::npos)
      << squatted->hint;
}

}  // namespace
}  // namespace tether::cli
