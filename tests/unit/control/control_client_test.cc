#include "control/control_client.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "net/socket.h"

namespace tether::control {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// A one-connection server on its own thread: it accepts, reads the request line, then
// hands the connection to `answer`, and keeps it open until the test is done (so that
// "no reply" stays no reply). Every wait is bounded.
class TinyServer {
 public:
  using Answer = std::function<void(int fd)>;

  TinyServer(UniqueFd listener, Answer answer)
      : listener_(std::move(listener)), answer_(std::move(answer)) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~TinyServer() {
    done_ = true;
    thread_.join();
  }

  // The request line as received (after the thread has read it).
  std::string request() {
    const auto deadline = Clock::now() + 5s;
    while (!have_request_ && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return have_request_ ? request_ : "<none>";
  }

 private:
  bool WaitReadable(int fd, Clock::time_point deadline) {
    while (!done_ && Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10) > 0) return true;
    }
    return false;
  }

  void Serve() {
    const auto deadline = Clock::now() + 5s;
    if (!WaitReadable(listener_.get(), deadline)) return;
    auto conn = net::Accept(listener_.get());
    if (!conn.ok() || !conn->valid()) return;
    UniqueFd fd = std::move(*conn);
    std::string in;
    while (in.find('\n') == std::string::npos && WaitReadable(fd.get(), deadline)) {
      char buf[4096];
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    request_ = in.substr(0, in.find('\n'));
    have_request_ = true;
    answer_(fd.get());
    // Hold the connection (unless `answer` closed it) until the client is done.
    while (!done_ && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  }

  UniqueFd listener_;
  Answer answer_;
  std::string request_;
  std::atomic<bool> have_request_{false};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

void SendAll(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

class ControlClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-control-client-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/gpu.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<TinyServer> Serve(TinyServer::Answer answer) {
    auto listener = net::ListenUnix(path_);
    EXPECT_TRUE(listener.ok()) << listener.error().ToString();
    if (!listener.ok()) return nullptr;
    return std::make_unique<TinyServer>(std::move(*listener), std::move(answer));
  }

  std::string dir_;
  std::string path_;
};

TEST_F(ControlClientTest, ReturnsTheReplyToItsRequest) {
  auto server = Serve([](int fd) { SendAll(fd, "{\"ok\":true,\"pong\":true}\n"); });
  ASSERT_NE(server, nullptr);

  auto reply = Request(path_, Json{{"cmd", "ping"}}, 2s);

  ASSERT_TRUE(reply.ok()) << reply.error().ToString();
  EXPECT_EQ(*reply, (Json{{"ok", true}, {"pong", true}}));
  EXPECT_EQ(Json::parse(server->request()), (Json{{"cmd", "ping"}}));
}

TEST_F(ControlClientTest, WaitsForAReplyThatArrivesInPieces) {
  auto server = Serve([](int fd) {
    SendAll(fd, "{\"ok\":tr");
    std::this_thread::sleep_for(30ms);
    SendAll(fd, "ue,\"n\":1}\n");
  });
  ASSERT_NE(server, nullptr);

  auto reply = Request(path_, Json{{"cmd", "echo"}}, 2s);

  ASSERT_TRUE(reply.ok()) << reply.error().ToString();
  EXPECT_EQ(*reply, (Json{{"ok", true}, {"n", 1}}));
}

TEST_F(ControlClientTest, GivesUpWhenNoReplyComesWithinTheTimeout) {
  auto server = Serve([](int) {});
  ASSERT_NE(server, nullptr);

  const auto start = Clock::now();
  auto reply = Request(path_, Json{{"cmd", "status"}}, 200ms);
  const auto took = Clock::now() - start;

  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().step, "control");
  EXPECT_NE(reply.error().message.find("no reply"), std::string::npos) << reply.error().ToString();
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 2s);
}

TEST_F(ControlClientTest, ReportsADaemonThatClosesWithoutReplying) {
  auto server = Serve([](int fd) { ::shutdown(fd, SHUT_RDWR); });
  ASSERT_NE(server, nullptr);

  const auto start = Clock::now();
  auto reply = Request(path_, Json{{"cmd", "stop"}}, 2s);

  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().step, "control");
  EXPECT_NE(reply.error().message.find("closed"), std::string::npos) << reply.error().ToString();
  EXPECT_LT(Clock::now() - start, 1s);
}

TEST_F(ControlClientTest, RefusesAMalformedReply) {
  const std::vector<std::string> replies = {
      "not json\n", "{\"ok\":tru\n", "[{\"ok\":true}]\n", "42\n", "\"ok\"\n", "\n",
  };
  for (const std::string& bad : replies) {
    auto server = Serve([&bad](int fd) { SendAll(fd, bad); });
    ASSERT_NE(server, nullptr);

    auto reply = Request(path_, Json{{"cmd", "ping"}}, 2s);

    ASSERT_FALSE(reply.ok()) << testing::PrintToString(bad) << " accepted";
    EXPECT_EQ(reply.error().step, "control");
    EXPECT_NE(reply.error().message.find("malformed"), std::string::npos)
        << testing::PrintToString(bad) << ": " << reply.error().ToString();
    server.reset();
    std::filesystem::remove(path_);
  }
}

TEST_F(ControlClientTest, ReportsASocketThatDoesNotExist) {
  auto reply = Request(dir_ + "/nobody.sock", Json{{"cmd", "ping"}}, 2s);

  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().step, "control");
  EXPECT_NE(reply.error().message.find("nobody.sock"), std::string::npos)
      << reply.error().ToString();
}

}  // namespace
}  // namespace tether::control
