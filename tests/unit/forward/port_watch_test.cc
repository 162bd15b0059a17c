// The auto forward plan against a fake laptop (which ports bind), the parsing of the
// server's listen table and command lines, and the watch's shell loop run by /bin/sh on
// this machine's own table.
#include "forward/port_watch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "forward/scripted_server.h"

namespace tether::forward {
namespace {

using namespace std::chrono_literals;

// The laptop: ports taken by others, and what the plan bound.
class FakeLaptop : public AutoForwardPlan::Sink {
 public:
  bool Bind(uint16_t server_port, uint16_t local_port, uint64_t) override {
    if (taken.count(local_port)) return false;
    for (auto& [s, l] : bound) {
      if (l == local_port) return false;
    }
    bound[server_port] = local_port;
    return true;
  }
  void Unbind(uint16_t server_port) override {
    ASSERT_TRUE(bound.count(server_port)) << server_port;
    bound.erase(server_port);
    ++unbinds;
  }
  std::set<uint16_t> taken;
  std::map<uint16_t, uint16_t> bound;  // server port -> laptop port
  int unbinds = 0;
};

std::vector<ServerListener> Ports(std::initializer_list<uint16_t> ports) {
  std::vector<ServerListener> out;
  for (uint16_t p : ports) out.push_back({p, 1000u + p});
  return out;
}

TEST(AutoForwardPlanTest, ForwardsANewPortAtTheSamePort) {
  FakeLaptop laptop;
  AutoForwardPlan plan({}, laptop);
  plan.Update(Ports({8888}), {});
  EXPECT_EQ(laptop.bound, (std::map<uint16_t, uint16_t>{{8888, 8888}}));
  EXPECT_EQ(plan.LocalPortOf(8888), 8888);
  plan.Update(Ports({8888}), {});  // still there: nothing new
  EXPECT_EQ(laptop.bound.size(), 1u);
}

TEST(AutoForwardPlanTest, TakesTheNextFreePortWhenItsOwnIsTaken) {
  FakeLaptop laptop;
  laptop.taken = {8888, 8889};
  AutoForwardPlan plan({}, laptop);
  plan.Update(Ports({8888}), {});
  EXPECT_EQ(laptop.bound[8888], 8890);
}

TEST(AutoForwardPlanTest, RemovesAPortGoneForTwoReadsInARow) {
  FakeLaptop laptop;
  AutoForwardPlan plan({}, laptop);
  plan.Update(Ports({8888, 6006}), {});
  plan.Update(Ports({6006}), {});  // one read without it: a restart may be under way
  EXPECT_TRUE(laptop.bound.count(8888));
  plan.Update(Ports({6006, 8888}), {});  // back: the count starts again
  plan.Update(Ports({6006}), {});
  EXPECT_TRUE(laptop.bound.count(8888));
  plan.Update(Ports({6006}), {});
  EXPECT_FALSE(laptop.bound.count(8888));
  EXPECT_TRUE(laptop.bound.count(6006));
  EXPECT_EQ(plan.size(), 1u);
}

TEST(AutoForwardPlanTest, AComebackGetsTheLaptopPortItHadBefore) {
  FakeLaptop laptop;
  laptop.taken = {8888};
  AutoForwardPlan plan({}, laptop);
  plan.Update(Ports({8888}), {});
  ASSERT_EQ(laptop.bound[8888], 8889);
  plan.Update({}, {});
  plan.Update({}, {});
  ASSERT_TRUE(laptop.bound.empty());
  laptop.taken.clear();  // its own port is free now, but the user knows 8889
  plan.Update(Ports({8888}), {});
  EXPECT_EQ(laptop.bound[8888], 8889);
}

TEST(AutoForwardPlanTest, LeavesOutExcludedPortsAndDropsOnesThatBecomeExcluded) {
  FakeLaptop laptop;
  AutoForwardPlan plan({}, laptop);
  plan.Update(Ports({22, 8888, 10808}), {22, 10808});
  EXPECT_EQ(laptop.bound, (std::map<uint16_t, uint16_t>{{8888, 8888}}));
  // The user forwards 8888 by hand now: the auto one gives way at once.
  plan.Update(Ports({22, 8888, 10808}), {22, 8888, 10808});
  EXPECT_TRUE(laptop.bound.empty());
}

TEST(AutoForwardPlanTest, RespectsTheCap) {
  FakeLaptop laptop;
  AutoForwardPolicy policy;
  policy.max = 20;
  AutoForwardPlan plan(policy, laptop);
  std::vector<ServerListener> many;
  for (uint16_t p = 9000; p < 9030; ++p) many.push_back({p, p});
  plan.Update(many, {});
  EXPECT_EQ(laptop.bound.size(), 20u);
  EXPECT_EQ(plan.capped(), 10u);
  // One of them goes: a capped one takes its place.
  many.erase(many.begin());
  plan.Update(many, {});
  plan.Update(many, {});
  EXPECT_EQ(laptop.bound.size(), 20u);
  EXPECT_FALSE(laptop.bound.count(9000));
  EXPECT_TRUE(laptop.bound.count(9020));
}

TEST(AutoForwardPlanTest, FollowsTheAllowAndDenyLists) {
  FakeLaptop laptop;
  AutoForwardPolicy policy;
  policy.allow = {{8000, 8999}, {6006, 6006}};
  policy.deny = {{8500, 8600}};
  AutoForwardPlan plan(policy, laptop);
  plan.Update(Ports({3000, 6006, 8080, 8550, 9000}), {});
  EXPECT_EQ(laptop.bound, (std::map<uint16_t, uint16_t>{{6006, 6006}, {8080, 8080}}));
}

TEST(AutoForwardPlanTest, ACancelledPortStaysAwayButANewPortIsForwarded) {
  FakeLaptop laptop;
  AutoForwardPlan plan({}, laptop);
  plan.Update(Ports({8888}), {});
  laptop.bound.erase(8888);  // the daemon stopped it (tether forward --cancel)
  plan.Cancelled(8888);
  plan.Update(Ports({8888}), {});
  EXPECT_TRUE(laptop.bound.empty());
  plan.Update({}, {});
  plan.Update({}, {});
  plan.Update(Ports({8888}), {});  // back on the same port: still cancelled
  EXPECT_TRUE(laptop.bound.empty());
  plan.Update(Ports({8889}), {});  // the server moved to another port
  EXPECT_EQ(laptop.bound[8889], 8889);
}

TEST(AutoForwardPlanTest, APortThatCannotBeBoundIsNotRetriedEachRead) {
  FakeLaptop laptop;
  for (int p = 0; p < kAutoForwardPortTries; ++p) laptop.taken.insert(7000 + p);
  AutoForwardPlan plan({}, laptop);
  plan.Update(Ports({7000}), {});
  EXPECT_TRUE(laptop.bound.empty());
  laptop.taken.clear();
  plan.Update(Ports({7000}), {});
  EXPECT_TRUE(laptop.bound.empty());
  plan.Update({}, {});  // gone and back: tried again
  plan.Update(Ports({7000}), {});
  EXPECT_EQ(laptop.bound[7000], 7000);
}

TEST(PortRangesTest, Parses) {
  auto r = ParsePortRanges("8000-8999, 6006");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<PortRange>{{8000, 8999}, {6006, 6006}}));
  EXPECT_FALSE(ParsePortRanges("9000-8000").ok());
  EXPECT_FALSE(ParsePortRanges("0").ok());
  EXPECT_FALSE(ParsePortRanges("70000").ok());
  EXPECT_FALSE(ParsePortRanges("http").ok());
  EXPECT_EQ(FormatPortRanges(*r), "8000-8999,6006");
  EXPECT_EQ(FormatPortRanges({}), "");
}

std::string ListenLine(const std::string& address, uint16_t port, uint32_t uid, uint64_t inode) {
  return "   0: " + address + ":" + PortHex(port) + " " + std::string(address.size(), '0') +
         ":0000 0A 00000000:00000000 00:00000000 00000000 " + std::to_string(uid) + " 0 " +
         std::to_string(inode) + " 1 0000000000000000 100 0 0 10 0\n";
}

TEST(ListenersOfTest, TheOwnersLoopbackAndWildcardListenersOnly) {
  std::string text = ListenLine("0100007F", 8888, 1000, 11) +  // 127.0.0.1, ours
                     ListenLine("00000000", 6006, 1000, 12) +  // 0.0.0.0, ours
                     ListenLine("0100007F", 5000, 1001, 13) +  // another account's
                     ListenLine("0A00000A", 7000, 1000, 14) +  // 10.0.0.10: not loopback
                     ListenLine("0100007F", 7001, 1000, 0) +   // no process
                     ListenLine("00000000000000000000000001000000", 9000, 1000, 15) +  // ::1
                     "   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000 "
                     "1000 0 16 1 0 20 4 30 10 -1\n";  // an established connection
  auto got = ListenersOf(ParseSocketTable(text), 1000);
  EXPECT_EQ(got, (std::vector<ServerListener>{{6006, 12}, {8888, 11}, {9000, 15}}));
}

TEST(ProcessNameTest, ProgramOrScript) {
  EXPECT_EQ(ProcessName("/usr/bin/python3\x1f/home/u/.local/bin/jupyter-lab\x1f--no-browser"),
            "jupyter-lab");
  EXPECT_EQ(ProcessName("python3\x1f-u\x1f-m\x1fvllm.entrypoints.openai.api_server"),
            "vllm.entrypoints.openai.api_server");
  EXPECT_EQ(ProcessName("/opt/bin/tensorboard\x1f--logdir\x1fruns"), "tensorboard");
  EXPECT_EQ(ProcessName("python3\x1f-c\x1fserve(token='s3cret')"), "python3");
  EXPECT_EQ(ProcessName(""), "");
}

TEST(WellKnownUrlTest, JupyterWithItsTokenAndOthers) {
  EXPECT_EQ(WellKnownUrl("python3\x1f/usr/bin/jupyter-lab\x1f--ServerApp.token=abc123", 8890),
            "http://127.0.0.1:8890/?token=abc123");
  EXPECT_EQ(WellKnownUrl("jupyter-notebook\x1f--NotebookApp.token=x'y", 8888),
            "http://127.0.0.1:8888/?token=x");
  EXPECT_EQ(WellKnownUrl("python\x1f-m\x1fvllm.entrypoints.openai.api_server", 8000),
            "http://127.0.0.1:8000/v1/models");
  EXPECT_EQ(WellKnownUrl("/usr/bin/tensorboard\x1f--logdir=runs", 6006), "http://127.0.0.1:6006/");
  EXPECT_EQ(WellKnownUrl("python3\x1f-m\x1fhttp.server", 8000), "");
}

// Against a scripted server: the table is asked once greeted and again each interval (one
// read at a time), a command line on request; a question the run could not answer is "".
TEST(PortWatchTest, AsksForTheTableOnceGreetedAndForACommandLine) {
  net::EventLoop loop;
  ScriptedServer server(loop);
  std::vector<std::pair<size_t, uint32_t>> tables;  // entries, uid
  PortWatch watch(
      loop, server.Runner(),
      [&](const std::vector<SocketEntry>& table, uint32_t uid) {
        tables.emplace_back(table.size(), uid);
      },
      "test");
  std::optional<std::string> early;
  watch.CommandLineOf(77, [&](const std::string& c) { early = c; });
  watch.Start();
  EXPECT_EQ(server.runs(), 1);
  server.Drive();
  EXPECT_EQ(early, "");  // not greeted yet: unknown
  server.Says("uid 1000\n");
  EXPECT_EQ(server.Hears(), "l\n");
  server.Says("   0: 0100007F:1F90 00000000:0000 0A 0:0 0:0 0 1000 0 31337 1\nend\n");
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0], std::make_pair(size_t{1}, uint32_t{1000}));

  std::optional<std::string> cmdline, lost;
  watch.CommandLineOf(31337, [&](const std::string& c) { cmdline = c; });
  EXPECT_EQ(server.Hears(), "c31337\n");
  server.Says("python3\x1f-m\x1fhttp.server\nend\n");
  EXPECT_EQ(cmdline, "python3\x1f-m\x1fhttp.server");

  watch.CommandLineOf(4242, [&](const std::string& c) { lost = c; });
  server.ended("its session ended");
  server.Drive();
  EXPECT_EQ(lost, "");
  EXPECT_TRUE(watch.unavailable().empty());
}

TEST(PortWatchTest, AServerWithoutTheTableIsUnavailableForGood) {
  net::EventLoop loop;
  ScriptedServer server(loop);
  PortWatch watch(
      loop, server.Runner(), [](const std::vector<SocketEntry>&, uint32_t) {}, "test");
  watch.Start();
  server.Says("none /proc/net/tcp cannot be read\n");
  EXPECT_NE(watch.unavailable().find("cannot be read"), std::string::npos) << watch.unavailable();
  EXPECT_EQ(server.runs(), 1);
}

// The real shell loop run by /bin/sh on this machine: a socket this test listens on is in
// its answer with our uid, and its command line is this test program's.
TEST(PortWatchScriptTest, ReadsThisMachinesListenersAndACommandLine) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const uint16_t port = ntohs(addr.sin_port);

  net::EventLoop loop;
  std::vector<pid_t> children;
  std::optional<std::vector<ServerListener>> seen;
  std::optional<std::string> cmdline;
  std::unique_ptr<PortWatch> watch;
  watch = std::make_unique<PortWatch>(
      loop,
      [&](const std::string& command, UniqueFd in, UniqueFd out, UniqueFd err, PortWatch::Ended) {
        children.push_back(RunScriptHere(command, std::move(in), std::move(out), std::move(err)));
      },
      [&](const std::vector<SocketEntry>& table, uint32_t uid) {
        EXPECT_EQ(uid, ::getuid());
        if (seen) return;
        seen = ListenersOf(table, uid);
        for (const auto& l : *seen) {
          if (l.port == port) {
            watch->CommandLineOf(l.inode, [&](const std::string& c) { cmdline = c; });
          }
        }
      },
      "test");
  watch->Start();
  for (int i = 0; i < 1000 && !cmdline; ++i) ASSERT_TRUE(loop.RunOnce(10ms).ok());
  ASSERT_TRUE(seen.has_value());
  EXPECT_TRUE(std::any_of(seen->begin(), seen->end(),
                          [&](const ServerListener& l) { return l.port == port; }));
  ASSERT_TRUE(cmdline.has_value());
  EXPECT_NE(ProcessName(*cmdline).find("tether_unit_tests"), std::string::npos) << *cmdline;
  watch.reset();
  for (pid_t pid : children) {
    ::kill(pid, SIGTERM);
    ::waitpid(pid, nullptr, 0);
  }
  ::close(listener);
}

}  // namespace
}  // namespace tether::forward
