// End-to-end: the daemon's life: background, status, down, stale state, control socket.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "control/control_client.h"
#include "e2e/tether_fixture.h"
#include "net/socket.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;
using LifecycleTest = TetherTest;

pid_t DaemonPid(TetherTest& t) {
  auto text = ReadFile(t.StatePath("testhost.pid"));
  if (!text.ok()) return 0;
  return static_cast<pid_t>(std::atol(text->c_str()));
}

TEST_F(LifecycleTest, DownLeavesNoProcessAndNoFile) {
  HttpServer http;
  UpWithForward(http.port());
  pid_t pid = DaemonPid(*this);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(ProcessAlive(pid));
  ASSERT_TRUE(std::filesystem::exists(StatePath("testhost.forwards")))
      << "the daemon keeps no record";
  CommandResult down = Tether({"down", "testhost"});
  ASSERT_TRUE(down.ok()) << down.Describe();
  EXPECT_NE(down.out.find("down"), std::string::npos);
  EXPECT_FALSE(ProcessAlive(pid));
  EXPECT_TRUE(StateFiles().empty()) << "left: " << StateFiles().front();
  CommandResult status = Tether({"status"});
  EXPECT_NE(status.out.find("no hosts up"), std::string::npos) << status.Describe();
}

TEST_F(LifecycleTest, StateDirectoryIsPrivateAndSocketsAreOwnerOnly) {
  HttpServer http;
  UpWithForward(http.port());
  struct stat st {};
  ASSERT_EQ(::stat(state_.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(StatePath("testhost.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(StatePath("testhost.pid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  ASSERT_EQ(::stat(StatePath("testhost.log").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
}

// The record of what a daemon ran (HOST.forwards) outlives a kill -9, for doctor; every
// other file is cleaned up, and the next daemon writes a record of its own.
TEST_F(LifecycleTest, KilledDaemonIsNoticedOnceAndCleanedUp) {
  HttpServer http;
  uint16_t local = UpWithForward(http.port());
  pid_t pid = DaemonPid(*this);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return !ProcessAlive(pid); }, seconds(5)));
  CommandResult first = Tether({"status"});
  EXPECT_NE(first.err.find("is gone"), std::string::npos) << first.Describe();
  EXPECT_EQ(StateFiles(), std::vector<std::string>{"testhost.forwards"});
  auto record =
      nlohmann::json::parse(ReadFileOrEmpty(StatePath("testhost.forwards")), nullptr, false);
  ASSERT_TRUE(record.is_object());
  EXPECT_EQ(record.value("pid", 0), pid);
  ASSERT_EQ(record["forwards"].size(), 1u) << record.dump();
  EXPECT_EQ(record["forwards"][0].value("port", 0), local);
  CommandResult second = Tether({"status"});
  EXPECT_EQ(second.err.find("is gone"), std::string::npos) << "said twice: " << second.err;
  // And it can come up again.
  UpWithForward(http.port());
  record = nlohmann::json::parse(ReadFileOrEmpty(StatePath("testhost.forwards")), nullptr, false);
  ASSERT_TRUE(record.is_object());
  EXPECT_EQ(record.value("pid", 0), DaemonPid(*this));
  // `down` of a host whose daemon was killed removes the record as well.
  pid = DaemonPid(*this);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return !ProcessAlive(pid); }, seconds(5)));
  CommandResult down = Tether({"down", "testhost"});
  EXPECT_NE(down.out.find("not up"), std::string::npos) << down.Describe();
  EXPECT_TRUE(StateFiles().empty()) << "left: " << StateFiles().front();
}

// Forwards added and cancelled at runtime are in the record at once.
TEST_F(LifecycleTest, TheForwardsRecordFollowsForwardsAddedAndCancelled) {
  HttpServer http;
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  auto ports = [&] {
    std::vector<int> out;
    auto record =
        nlohmann::json::parse(ReadFileOrEmpty(StatePath("testhost.forwards")), nullptr, false);
    if (!record.is_object()) return std::vector<int>{-1};
    for (const auto& f : record["forwards"]) out.push_back(f.value("port", 0));
    return out;
  };
  EXPECT_EQ(ports(), std::vector<int>{});
  const uint16_t local = FreeTcpPort();
  const std::string spec = std::to_string(local) + ":127.0.0.1:" + std::to_string(http.port());
  ASSERT_TRUE(Tether({"forward", "testhost", "-L", spec}).ok());
  EXPECT_EQ(ports(), std::vector<int>{local});
  ASSERT_TRUE(Tether({"forward", "testhost", "--cancel", std::to_string(local)}).ok());
  EXPECT_EQ(ports(), std::vector<int>{});
}

TEST_F(LifecycleTest, ForegroundStaysAttachedAndStopsOnSigterm) {
  HttpServer http;
  uint16_t local = FreeTcpPort();
  std::string log = scratch_.File("fg.out");
  auto child =
      SpawnProcess({TetherBinary(), "-F", sshd_.config_path(), "up", "testhost", "--foreground",
                    "-L", std::to_string(local) + ":127.0.0.1:" + std::to_string(http.port())},
                   {{"TETHER_STATE_DIR", state_.path()}}, log);
  ASSERT_TRUE(child.ok()) << child.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return PortAccepts(local); }, seconds(10))) << ReadFile(log).value();
  ASSERT_TRUE(HttpGet(local).ok());
  ASSERT_TRUE(child->Signal(SIGTERM));
  auto code = child->Wait(seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << ReadFile(log).value();
  EXPECT_NE(ReadFile(log).value().find("stopping"), std::string::npos);
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(LifecycleTest, GarbageOnTheControlSocketGetsAnErrorAndTheDaemonLivesOn) {
  HttpServer http;
  uint16_t local = UpWithForward(http.port());
  std::string sock = StatePath("testhost.sock");
  const std::string garbage[] = {
      "not json at all\n",
      "[1,2,3]\n",
      "{\"no_cmd\":1}\n",
      "{\"cmd\":42}\n",
      "{\"cmd\":\"launch-missiles\"}\n",
      std::string("\x00\xff\xfe{\n", 5),
  };
  for (const auto& g : garbage) {
    auto fd = net::ConnectUnix(sock);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(SendAll(fd->get(), g).ok());
    auto reply = ReceiveUntil(fd->get(), "\n", seconds(5));
    ASSERT_TRUE(reply.ok()) << reply.error().ToString();
    auto json = nlohmann::json::parse(*reply, nullptr, false);
    ASSERT_TRUE(json.is_object()) << *reply;
    EXPECT_EQ(json["ok"], false) << *reply;
    EXPECT_TRUE(json["error"].is_string()) << *reply;
  }
  {
    // A huge line without a newline: refused, connection closed.
    auto fd = net::ConnectUnix(sock);
    ASSERT_TRUE(fd.ok());
    (void)SendAll(fd->get(), std::string(1 << 20, 'x'), seconds(5));
    auto reply = ReceiveAll(fd->get(), seconds(5));
    ASSERT_TRUE(reply.ok());
    EXPECT_NE(reply->find("too long"), std::string::npos) << reply->substr(0, 200);
  }
  {
    // Half a message, then the client goes away.
    auto fd = net::ConnectUnix(sock);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(SendAll(fd->get(), "{\"cmd\":\"sta").ok());
  }
  auto ping = control::Request(sock, {{"cmd", "ping"}}, seconds(5));
  ASSERT_TRUE(ping.ok()) << ping.error().ToString();
  EXPECT_EQ((*ping)["ok"], true);
  auto response = HttpGet(local);
  ASSERT_TRUE(response.ok()) << response.error().ToString();
}

TEST_F(LifecycleTest, DownAllStopsEveryHost) {
  HttpServer http;
  UpWithForward(http.port());
  std::string alias_config = scratch_.File("second.conf");
  ClientConfigOptions options;
  options.host = "second";
  ASSERT_TRUE(sshd_.WriteClientConfig(alias_config, options).ok());
  CommandResult up2 = RunTether(state_.path(), {"-F", alias_config, "up", "second"});
  ASSERT_TRUE(up2.ok()) << up2.Describe();
  CommandResult status = Tether({"status", "--json"});
  ASSERT_EQ(nlohmann::json::parse(status.out)["hosts"].size(), 2u) << status.out;
  CommandResult down = Tether({"down", "--all"});
  ASSERT_TRUE(down.ok()) << down.Describe();
  EXPECT_TRUE(StateFiles().empty());
}

// Three daemons that do not answer (stopped, as a wedged daemon would be): status names
// each with its pid, and asks them at once, so it waits their 3 s once, not three times.
TEST_F(LifecycleTest, StatusNamesEveryStuckDaemonAndWaitsForThemAtOnce) {
  const std::vector<std::string> hosts = {"testhost", "second", "third"};
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  std::string alias_config = scratch_.File("more.conf");
  ClientConfigOptions options;
  options.host = "second third";  // one Host line, two names
  ASSERT_TRUE(sshd_.WriteClientConfig(alias_config, options).ok());
  for (const char* alias : {"second", "third"})
    ASSERT_TRUE(RunTether(state_.path(), {"-F", alias_config, "up", alias}).ok()) << alias;
  std::vector<pid_t> pids;
  for (const auto& host : hosts) {
    auto text = ReadFile(StatePath(host + ".pid"));
    pids.push_back(text.ok() ? static_cast<pid_t>(std::atol(text->c_str())) : 0);
    ASSERT_GT(pids.back(), 0) << host;
  }
  auto timed_status = [&](CommandResult* r) {
    const auto start = std::chrono::steady_clock::now();
    *r = Tether({"status", "--json"});
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  };
  CommandResult status;
  // What a status costs here with every daemon answering: the yardstick (a sanitizer build
  // under load takes seconds).
  const auto awake = timed_status(&status);
  ASSERT_TRUE(status.ok()) << status.Describe();
  for (pid_t p : pids) ASSERT_EQ(::kill(p, SIGSTOP), 0);
  const auto stuck = timed_status(&status);
  for (pid_t p : pids) ::kill(p, SIGCONT);
  auto j = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << status.Describe();
  ASSERT_EQ(j["hosts"].size(), hosts.size()) << status.out;
  for (const auto& h : j["hosts"]) {
    EXPECT_EQ(h.value("state", ""), "unresponsive") << h.dump();
    EXPECT_NE(std::find(pids.begin(), pids.end(), h.value("pid", 0)), pids.end()) << h.dump();
    EXPECT_NE(h.value("error", "").find("no reply"), std::string::npos) << h.dump();
  }
  // At once: 3 s more than awake; one after another: 9 s more. The bound is between.
  EXPECT_LT(stuck - awake, std::chrono::milliseconds(6000))
      << stuck.count() << " ms stuck, " << awake.count() << " ms awake";
  // Woken, they answer again.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto again = nlohmann::json::parse(Tether({"status", "--json"}).out, nullptr, false);
        if (!again.is_object() || again["hosts"].size() != hosts.size()) return false;
        for (const auto& h : again["hosts"])
          if (h.value("state", "") != "up") return false;
        return true;
      },
      seconds(10)));
}

}  // namespace
}  // namespace tether::testing

namespace tether::testing {
namespace {

using std::chrono::seconds;
using ManagerTest = TetherTest;

TEST_F(ManagerTest, LsShowsOneLinePerHost) {
  HttpServer http;
  UpWithForward(http.port());
  CommandResult ls = Tether({"ls"});
  ASSERT_TRUE(ls.ok()) << ls.Describe();
  EXPECT_NE(ls.out.find("testhost"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("1 forward"), std::string::npos) << ls.out;
  EXPECT_EQ(std::count(ls.out.begin(), ls.out.end(), '\n'), 1) << ls.out;
  CommandResult json = Tether({"ls", "--json"});
  auto parsed = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(parsed.is_object()) << json.out;
  EXPECT_EQ(parsed["hosts"][0]["host"], "testhost");
  EXPECT_EQ(parsed["hosts"][0]["forwards"], 1);
}

TEST_F(ManagerTest, LogsShowConnectionPrefixesAndFollowNewLines) {
  HttpServer http;
  uint16_t local = UpWithForward(http.port());  // the fixture runs the daemon with -v
  ASSERT_TRUE(HttpGet(local).ok());
  CommandResult logs = Tether({"logs", "testhost"});
  ASSERT_TRUE(logs.ok()) << logs.Describe();
  EXPECT_NE(logs.out.find("[testhost] up:"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("[testhost fwd " + std::to_string(local) + " #1]"), std::string::npos)
      << logs.out;
  // -f: a connection made while following shows up in the output. The connection is made
  // once `logs -f` has printed its one line of history, so it is following by then.
  std::string out = scratch_.File("follow.out");
  auto follow =
      SpawnProcess({TetherBinary(), "-F", sshd_.config_path(), "logs", "testhost", "-n", "1", "-f"},
                   {{"TETHER_STATE_DIR", state_.path()}}, out);
  ASSERT_TRUE(follow.ok()) << follow.error().ToString();
  auto printed = [&](std::string_view what) {
    return ReadFileOrEmpty(out).find(what) != std::string::npos;
  };
  ASSERT_TRUE(WaitFor([&] { return printed("\n"); }, seconds(10))) << ReadFileOrEmpty(out);
  EXPECT_FALSE(printed("#2]"));
  ASSERT_TRUE(HttpGet(local).ok());
  EXPECT_TRUE(WaitFor([&] { return printed("#2]"); }, seconds(10))) << ReadFileOrEmpty(out);
  EXPECT_TRUE(follow->Running()) << "logs -f ended by itself";
  follow->Terminate();
}

TEST_F(ManagerTest, LogsOfAnUnknownHostIsAClearError) {
  CommandResult logs = Tether({"logs", "nosuchhost"});
  EXPECT_EQ(logs.exit_code, 1);
  EXPECT_NE(logs.err.find("no log for nosuchhost"), std::string::npos) << logs.err;
}

}  // namespace
}  // namespace tether::testing

namespace tether::testing {
namespace {

using RaceTest = TetherTest;

TEST_F(RaceTest, TwoUpsAtOnceEndWithOneDaemon) {
  constexpr int kRacers = 4;
  std::vector<CommandResult> results(kRacers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kRacers; ++i) {
    threads.emplace_back([&, i] { results[i] = Tether({"up", "testhost"}); });
  }
  for (auto& t : threads) t.join();
  int started = 0;
  for (const auto& r : results) {
    EXPECT_TRUE(r.ok()) << r.Describe();
    if (r.out.find("testhost is up") != std::string::npos) ++started;
  }
  EXPECT_EQ(started, 1);
  CommandResult status = Tether({"status", "--json"});
  auto json = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_TRUE(json.is_object()) << status.Describe();
  ASSERT_EQ(json["hosts"].size(), 1u);
  pid_t pid = json["hosts"][0]["pid"].get<pid_t>();
  for (const auto& r : results) {
    EXPECT_NE(r.out.find("(pid " + std::to_string(pid) + ")"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace tether::testing
