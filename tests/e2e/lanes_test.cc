// End-to-end: lanes, further SSH connections that carry -L streams on threads of their own
// (daemon/lane.h), through a real sshd: streams spread over the main connection and the
// lane and arrive byte-identical; a lane that loses its connection leaves the main one
// serving.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <dirent.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

using LanesTest = TetherTest;

nlohmann::json Status(TetherTest& t) {
  CommandResult r = t.Tether({"status", "--json"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_object() ? j["hosts"][0] : nlohmann::json::object();
}

nlohmann::json Lane(const nlohmann::json& host) {
  const auto& open =
      host.value("lanes", nlohmann::json::object()).value("open", nlohmann::json::array());
  return open.empty() ? nlohmann::json::object() : open[0];
}

// `tether up testhost --lanes N -L LOCAL:127.0.0.1:TARGET`; returns LOCAL.
uint16_t UpWithLanes(TetherTest& t, int lanes, uint16_t target) {
  uint16_t local = FreeTcpPort();
  CommandResult r = t.Tether({"-v", "up", "testhost", "--lanes", std::to_string(lanes), "-L",
                              std::to_string(local) + ":127.0.0.1:" + std::to_string(target)});
  EXPECT_TRUE(r.ok()) << r.Describe();
  return local;
}

// A connection through the forward to an EchoServer, checked with one round trip (so the
// daemon has placed it before the next one arrives).
UniqueFd OpenEchoed(uint16_t port, int n) {
  auto fd = ConnectTcp(port);
  EXPECT_TRUE(fd.ok()) << fd.error().ToString();
  if (!fd.ok()) return UniqueFd();
  std::string hello = "hello " + std::to_string(n) + "\n";
  EXPECT_TRUE(SendAll(fd->get(), hello).ok());
  auto got = ReceiveUntil(fd->get(), "\n", seconds(10));
  EXPECT_TRUE(got.ok() && *got == hello) << (got.ok() ? *got : got.error().ToString());
  return std::move(*fd);
}

// Sends `bytes` pattern bytes and half-closes while reading the echo to EOF; true when the
// echo is byte-identical.
bool EchoesIdentically(int fd, uint64_t bytes, uint64_t seed) {
  Result<TransferSummary> sent = MakeError("test", "not sent");
  std::thread writer([&] {
    sent = SendAllAndHash(fd, bytes, seed, seconds(60));
    ::shutdown(fd, SHUT_WR);
  });
  auto got = ReceiveAllAndHash(fd, seconds(60));
  writer.join();
  return sent.ok() && got.ok() && got->bytes == bytes && got->sha256_hex == sent->sha256_hex;
}

// The newest direct child of `parent` (by start time), or -1.
pid_t NewestChild(pid_t parent) {
  pid_t newest = -1;
  unsigned long long newest_start = 0;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return -1;
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string field;
    std::vector<std::string> fields;
    while (rest >> field) fields.push_back(field);
    if (fields.size() < 20 || std::stoi(fields[1]) != parent) continue;
    unsigned long long start = std::stoull(fields[19]);  // starttime, field 22 of stat
    if (newest < 0 || start >= newest_start) {
      newest = pid;
      newest_start = start;
    }
  }
  ::closedir(proc);
  return newest;
}

TEST_F(LanesTest, StreamsSpreadOverTheMainConnectionAndTheLaneAndArriveByteIdentical) {
  EchoServer echo;
  uint16_t local = UpWithLanes(*this, 1, echo.port());
  ASSERT_TRUE(WaitFor([&] { return Lane(Status(*this)).value("state", "") == "up"; }, seconds(20)));

  // One at a time, each placed before the next: main (a tie goes to it), lane, main, lane.
  std::vector<UniqueFd> conns;
  for (int i = 0; i < 4; ++i) conns.push_back(OpenEchoed(local, i));
  auto host = Status(*this);
  EXPECT_EQ(Lane(host)["streams"], 2) << host.dump(2);
  EXPECT_EQ(Lane(host)["live"], 2) << host.dump(2);
  EXPECT_EQ(host["forwards"][0]["live"], 4) << host.dump(2);

  // All four at once, both directions, 16 MiB each.
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      if (EchoesIdentically(conns[i].get(), 16u << 20, 100 + i)) ++good;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 4);
  conns.clear();
  ASSERT_TRUE(WaitFor([&] { return Lane(Status(*this)).value("live", -1) == 0; }, seconds(10)));
  host = Status(*this);
  EXPECT_GE(host["forwards"][0]["bytes_in"].get<uint64_t>(), 4u * (16u << 20));
  EXPECT_EQ(host["window_budget_used"], 0) << "every stream gave its window back";
}

TEST_F(LanesTest, NoLanesWhenAskedForNone) {
  EchoServer echo;
  uint16_t local = UpWithLanes(*this, 0, echo.port());
  std::vector<UniqueFd> conns;
  for (int i = 0; i < 3; ++i) conns.push_back(OpenEchoed(local, i));
  auto host = Status(*this);
  EXPECT_EQ(host["lanes"]["wanted"], 0);
  EXPECT_TRUE(host["lanes"]["open"].empty()) << host.dump(2);
  EXPECT_EQ(host["forwards"][0]["live"], 3);
}

TEST_F(LanesTest, ALaneThatLosesItsConnectionLeavesTheMainOneServing) {
  EchoServer echo;
  uint16_t local = UpWithLanes(*this, 1, echo.port());
  ASSERT_TRUE(WaitFor([&] { return Lane(Status(*this)).value("state", "") == "up"; }, seconds(20)));
  UniqueFd on_main = OpenEchoed(local, 0);
  UniqueFd on_lane = OpenEchoed(local, 1);
  ASSERT_EQ(Lane(Status(*this))["live"], 1);

  // The lane connected last: the newest of sshd's connection processes is the lane's.
  pid_t lane_sshd = NewestChild(sshd_.pid());
  ASSERT_GT(lane_sshd, 0);
  for (pid_t p : ProcessDescendants(lane_sshd)) ::kill(p, SIGKILL);
  ::kill(lane_sshd, SIGKILL);

  // The lane's stream ends (EOF or reset), the lane is retired, the link stays up.
  auto rest = ReceiveAll(on_lane.get(), seconds(20));
  if (!rest.ok()) {  // a reset is an end too; the timeout is not
    EXPECT_NE(rest.error().sys_errno, 0) << "the lane's stream did not end within 20 s: "
                                         << rest.error().ToString();
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        auto h = Status(*this);
        return h.value("state", "") == "up" && h["lanes"]["open"].empty();
      },
      seconds(20)));
  // The main connection's stream still echoes; new streams run on it.
  EXPECT_TRUE(EchoesIdentically(on_main.get(), 4u << 20, 7));
  UniqueFd fresh = OpenEchoed(local, 2);
  EXPECT_TRUE(EchoesIdentically(fresh.get(), 4u << 20, 8));
  auto host = Status(*this);
  EXPECT_EQ(host["reconnects"], 0) << host.dump(2);
}

}  // namespace
}  // namespace tether::testing
