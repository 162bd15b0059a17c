// The owner check against a scripted server side (the test plays the shell loop on the
// other end of the descriptors), and once against this machine's own socket table with
// the real script run by /bin/sh.
#include "forward/owner_check.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "forward/scripted_server.h"
#include "forward/socket_table.h"

namespace tether::forward {
namespace {

using namespace std::chrono_literals;
using Verdict = OwnerCheck::Verdict;

// The table's line for a client on 127.0.0.1:port connected to 127.0.0.1:10808.
std::string ClientLine(uint16_t port, uint32_t uid) {
  return "   1: 0100007F:" + PortHex(port) +
         " 0100007F:2A38 01 00000000:00000000 00:00000000 00000000 " + std::to_string(uid) +
         " 0 4242 1 0000000000000000 20 4 30 10 -1\n";
}

class OwnerCheckTest : public ::testing::Test {
 protected:
  // Asks about a client on 127.0.0.1:port; the answer lands in answers_[slot].
  OwnerCheck::Ticket Ask(uint16_t port) {
    size_t slot = answers_.size();
    answers_.emplace_back();
    return check_.Check("127.0.0.1", port, 10808,
                        [this, slot](const OwnerCheck::Answer& a) { answers_[slot] = a; });
  }

  net::EventLoop loop_;
  ScriptedServer server_{loop_};
  std::vector<std::optional<OwnerCheck::Answer>> answers_;
  OwnerCheck check_{loop_, server_.Runner(), "test"};
};

TEST_F(OwnerCheckTest, AnswersByTheUidOfTheSocketThatConnected) {
  Ask(50000);
  Ask(50001);
  EXPECT_EQ(server_.runs(), 1);  // one shell loop for every question
  EXPECT_EQ(check_.mode(), OwnerCheck::Mode::kStarting);
  EXPECT_EQ(server_.Hears(), "");  // nothing is asked before the greeting
  server_.Says("uid 1000\n");
  EXPECT_EQ(check_.mode(), OwnerCheck::Mode::kByUid);
  EXPECT_EQ(check_.owner_uid(), 1000u);
  EXPECT_EQ(server_.Hears(), "C350\nC351\n");
  server_.Says(ClientLine(50000, 1000) + "end\n" + ClientLine(50001, 1001) + "end\n");
  ASSERT_TRUE(answers_[0] && answers_[1]);
  EXPECT_EQ(answers_[0]->verdict, Verdict::kOwner);
  EXPECT_EQ(answers_[1]->verdict, Verdict::kOther);
  EXPECT_EQ(answers_[1]->uid, 1001u);
}

TEST_F(OwnerCheckTest, WhoListensNamesTheAccountHoldingAPort) {
  std::optional<OwnerCheck::Answer> squatter, nobody;
  check_.WhoListens(10808, [&](const OwnerCheck::Answer& a) { squatter = a; });
  check_.WhoListens(10809, [&](const OwnerCheck::Answer& a) { nobody = a; });
  server_.Says("uid 1000\n");
  EXPECT_EQ(server_.Hears(), "2A38\n2A39\n");
  server_.Says("   0: 0100007F:2A38 00000000:0000 0A 0:0 0:0 0 1001 0 31337 1\n" +
               ClientLine(50000, 1000) + "end\nend\n");
  ASSERT_TRUE(squatter && nobody);
  EXPECT_EQ(squatter->verdict, Verdict::kOther);
  EXPECT_EQ(squatter->uid, 1001u);
  EXPECT_EQ(nobody->verdict, Verdict::kUnknown);
}

// sshd's "localhost" listener succeeds on ::1 alone when another account holds
// 127.0.0.1: that account is the answer, wherever its line is.
TEST_F(OwnerCheckTest, WhoListensNamesAnotherAccountBesideOurOwnListener) {
  std::optional<OwnerCheck::Answer> beside, ours;
  check_.WhoListens(10808, [&](const OwnerCheck::Answer& a) { beside = a; });
  check_.WhoListens(10809, [&](const OwnerCheck::Answer& a) { ours = a; });
  server_.Says("uid 1000\n");
  EXPECT_EQ(server_.Hears(), "2A38\n2A39\n");
  server_.Says(
      "   0: 00000000000000000000000001000000:2A38 00000000000000000000000000000000:0000 0A "
      "0:0 0:0 0 1000 0 500 1\n"
      "   1: 0100007F:2A38 00000000:0000 0A 0:0 0:0 0 1001 0 501 1\nend\n"
      "   2: 0100007F:2A39 00000000:0000 0A 0:0 0:0 0 1000 0 502 1\nend\n");
  ASSERT_TRUE(beside && ours);
  EXPECT_EQ(beside->verdict, Verdict::kOther);
  EXPECT_EQ(beside->uid, 1001u);
  EXPECT_EQ(ours->verdict, Verdict::kOwner);
}

TEST_F(OwnerCheckTest, AccountOfNamesAUidFromItsPasswdLine) {
  std::optional<OwnerCheck::Answer> mallory, ghost;
  check_.AccountOf(1001, [&](const OwnerCheck::Answer& a) { mallory = a; });
  check_.AccountOf(4242, [&](const OwnerCheck::Answer& a) { ghost = a; });
  server_.Says("uid 1000\n");
  EXPECT_EQ(server_.Hears(), "u1001\nu4242\n");
  server_.Says("mallory:x:1001:1001::/home/mallory:/bin/sh\nend\nend\n");
  ASSERT_TRUE(mallory && ghost);
  EXPECT_EQ(mallory->verdict, Verdict::kOther);
  EXPECT_EQ(mallory->account, "mallory");
  EXPECT_EQ(ghost->uid, 4242u);
  EXPECT_EQ(ghost->account, "");  // no passwd line: the uid alone
}

TEST_F(OwnerCheckTest, ASocketNotFoundIsNotTheOwner) {
  Ask(50000);
  server_.Says("uid 1000\n");
  // Only the server's own side of another connection names the port.
  server_.Says("   1: 0100007F:2A38 0100007F:C350 01 0:0 0:0 0 1000 0 77 1\nend\n");
  ASSERT_TRUE(answers_[0]);
  EXPECT_EQ(answers_[0]->verdict, Verdict::kUnknown);
  EXPECT_NE(answers_[0]->why.find("127.0.0.1:50000"), std::string::npos) << answers_[0]->why;
}

TEST_F(OwnerCheckTest, ABannerBeforeTheGreetingIsSkipped) {
  Ask(50000);
  server_.Says("Welcome to gpu01\nuid 1000\n");
  EXPECT_EQ(server_.Hears(), "C350\n");
  server_.Says(ClientLine(50000, 1000) + "end\n");
  ASSERT_TRUE(answers_[0]);
  EXPECT_EQ(answers_[0]->verdict, Verdict::kOwner);
}

TEST_F(OwnerCheckTest, AServerWithoutTheTableSaysSoOnceAndEveryAnswerFallsBack) {
  Ask(50000);
  server_.Says("none /proc/net/tcp cannot be read\n");
  ASSERT_TRUE(answers_[0]);
  EXPECT_EQ(answers_[0]->verdict, Verdict::kUnavailable);
  EXPECT_EQ(check_.mode(), OwnerCheck::Mode::kUnavailable);
  EXPECT_NE(check_.unavailable_why().find("cannot be read"), std::string::npos);
  Ask(50001);
  EXPECT_FALSE(answers_[1]);  // never inside Check
  server_.Drive();
  ASSERT_TRUE(answers_[1]);
  EXPECT_EQ(answers_[1]->verdict, Verdict::kUnavailable);
  EXPECT_EQ(server_.runs(), 1);  // not started again
}

TEST_F(OwnerCheckTest, WhatTheServerWroteBeforeItsSessionEndedStillCounts) {
  Ask(50000);
  const std::string said = "uid 1000\n" + ClientLine(50000, 1000) + "end\n";
  ASSERT_EQ(::write(server_.fd(), said.data(), said.size()), static_cast<ssize_t>(said.size()));
  server_.ended("its session ended");  // before the loop read a byte
  server_.Drive();
  ASSERT_TRUE(answers_[0]);
  EXPECT_EQ(answers_[0]->verdict, Verdict::kOwner);
}

TEST_F(OwnerCheckTest, AnEndedCheckRefusesWhatWaits) {
  Ask(50000);
  server_.Says("uid 1000\n");
  server_.ended("the link went down");
  server_.Drive();
  ASSERT_TRUE(answers_[0]);
  EXPECT_EQ(answers_[0]->verdict, Verdict::kUnknown);
  EXPECT_NE(answers_[0]->why.find("the link went down"), std::string::npos);
}

TEST_F(OwnerCheckTest, AGarbledGreetingOrAnAnswerNotAskedForEndsTheRun) {
  Ask(50000);
  server_.Says("uid 10x0\n");
  ASSERT_TRUE(answers_[0]);
  EXPECT_EQ(answers_[0]->verdict, Verdict::kUnknown);
  EXPECT_EQ(check_.mode(), OwnerCheck::Mode::kStarting);
}

TEST_F(OwnerCheckTest, ACancelledQuestionKeepsTheAnswersInOrder) {
  auto first = Ask(50000);
  Ask(50001);
  check_.Cancel(first);
  server_.Says("uid 1000\n");
  EXPECT_EQ(server_.Hears(), "C350\nC351\n");
  server_.Says(ClientLine(50000, 1000) + "end\n" + ClientLine(50001, 1001) + "end\n");
  EXPECT_FALSE(answers_[0]);
  ASSERT_TRUE(answers_[1]);
  EXPECT_EQ(answers_[1]->verdict, Verdict::kOther);
  EXPECT_EQ(answers_[1]->uid, 1001u);
}

TEST_F(OwnerCheckTest, TooManyQuestionsAtOnceAreRefused) {
  for (size_t i = 0; i < kOwnerCheckMaxPending; ++i) Ask(static_cast<uint16_t>(1000 + i));
  Ask(9);
  server_.Drive();
  for (size_t i = 0; i < kOwnerCheckMaxPending; ++i) ASSERT_FALSE(answers_[i]) << i;
  ASSERT_TRUE(answers_.back());
  EXPECT_EQ(answers_.back()->verdict, Verdict::kUnknown);
  EXPECT_NE(answers_.back()->why.find("too many"), std::string::npos);
}

TEST_F(OwnerCheckTest, AnAnswerPastItsBoundEndsTheRun) {
  Ask(50000);
  server_.Says("uid 1000\n");
  std::string flood(kOwnerCheckMaxAnswer + 100, 'x');
  flood += "\n";
  // Written in pieces: the socket takes what it can, the check reads and gives up.
  size_t sent = 0;
  for (int i = 0; i < 200 && sent < flood.size() && !answers_[0]; ++i) {
    ssize_t n = ::write(server_.fd(), flood.data() + sent, flood.size() - sent);
    if (n > 0) sent += static_cast<size_t>(n);
    server_.Drive(1);
  }
  ASSERT_TRUE(answers_[0]);
  EXPECT_EQ(answers_[0]->verdict, Verdict::kUnknown);
}

// The real script, run by /bin/sh here, against this machine's /proc/net/tcp: a client
// this process connected is found, with this process's uid.
TEST(OwnerCheckScriptTest, FindsThisProcessesOwnConnection) {
  if (::access("/proc/net/tcp", R_OK) != 0) GTEST_SKIP() << "no /proc/net/tcp here";
  net::EventLoop loop;
  pid_t child = -1;
  OwnerCheck check(
      loop,
      [&](const std::string& command, UniqueFd in, UniqueFd out, UniqueFd err, OwnerCheck::Ended) {
        child = RunScriptHere(command, std::move(in), std::move(out), std::move(err));
      },
      "test");

  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const uint16_t listen_port = ntohs(addr.sin_port);
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  sockaddr_in local{};
  len = sizeof(local);
  ASSERT_EQ(::getsockname(client.get(), reinterpret_cast<sockaddr*>(&local), &len), 0);

  std::optional<OwnerCheck::Answer> answer, stranger, account;
  check.AccountOf(::getuid(), [&](const OwnerCheck::Answer& a) { account = a; });
  check.Check("127.0.0.1", ntohs(local.sin_port), listen_port,
              [&](const OwnerCheck::Answer& a) { answer = a; });
  // A port nobody connected from.
  check.Check("127.0.0.1", ntohs(local.sin_port), static_cast<uint16_t>(listen_port ^ 1),
              [&](const OwnerCheck::Answer& a) { stranger = a; });
  for (int i = 0; i < 500 && !(answer && stranger && account); ++i) {
    ASSERT_TRUE(loop.RunOnce(10ms).ok());
  }
  ASSERT_GT(child, 0);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_TRUE(answer && stranger && account);
  const passwd* me = ::getpwuid(::getuid());
  ASSERT_NE(me, nullptr);
  EXPECT_EQ(account->account, me->pw_name);
  EXPECT_EQ(answer->verdict, Verdict::kOwner) << answer->why;
  EXPECT_EQ(answer->uid, ::getuid());
  EXPECT_EQ(check.owner_uid(), ::getuid());
  EXPECT_EQ(stranger->verdict, Verdict::kUnknown);
}

}  // namespace
}  // namespace tether::forward
