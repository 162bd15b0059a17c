// The lane pool without a server: how many lanes it keeps, that a lane which cannot
// connect is retired and retried only after kLaneRetry, and that nothing is placed on a
// lane that is not up.
#include "daemon/lane_pool.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace tether::daemon {
namespace {

using namespace std::chrono_literals;

// A loopback port nobody listens on: bound, never listened, then closed.
uint16_t ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

TEST(LanePool, KeepsTheNumberWantedWithinItsBounds) {
  forward::WindowBudget budget(1u << 20);
  LanePool pool("gpu", budget);
  pool.SetWanted(-1);
  EXPECT_EQ(pool.wanted(), 0);
  pool.SetWanted(kMaxLanes + 5);
  EXPECT_EQ(pool.wanted(), kMaxLanes);
  EXPECT_GE(DefaultLanes(), 0);
  EXPECT_LE(DefaultLanes(), 3);
}

TEST(LanePool, PlacesNothingWhileNoLaneIsUp) {
  forward::WindowBudget budget(1u << 20);
  LanePool pool("gpu", budget);
  forward::NewStream stream;
  EXPECT_FALSE(pool.Place(stream, 100));
  EXPECT_TRUE(pool.Status().empty());
}

TEST(LanePool, ALaneThatCannotConnectIsRetiredAndRetriedOnlyAfterTheRetryDelay) {
  const uint16_t port = ClosedPort();
  ASSERT_NE(port, 0);
  config::HostConfig host;
  host.alias = "gpu";
  host.hostname = "127.0.0.1";
  host.port = port;
  host.connect_timeout = 2s;
  ssh::ConnectOptions options;
  options.tcp_connect_timeout = 1000ms;
  forward::WindowBudget budget(1u << 20);
  LanePool pool("gpu", budget);
  pool.SetWanted(1);
  auto now = std::chrono::steady_clock::now();

  pool.Ensure(now, host, options, 6s);
  ASSERT_EQ(pool.Status().size(), 1u);
  for (int i = 0; i < 100 && pool.Status()[0].state != Lane::State::kEnded; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(pool.Status()[0].state, Lane::State::kEnded);
  EXPECT_NE(pool.Status()[0].error.find("connect"), std::string::npos) << pool.Status()[0].error;

  pool.Check(now);
  EXPECT_TRUE(pool.Status().empty());
  EXPECT_EQ(pool.off(), "");  // a network failure does not turn lanes off
  pool.Ensure(now + kLaneRetry - 1s, host, options, 6s);
  EXPECT_TRUE(pool.Status().empty());
  pool.Ensure(now + kLaneRetry, host, options, 6s);
  EXPECT_EQ(pool.Status().size(), 1u);
}

}  // namespace
}  // namespace tether::daemon
