#include "control/mux_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "control/fake_mux_host.h"
#include "control/mux_codec.h"
#include "control/mux_wire.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "test_support/other_uid.h"

namespace tether::control {
namespace {

using namespace std::chrono_literals;

// Big-endian uint32 and length-prefixed strings, as a client writes them.
std::string U32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string Str(const std::string& s) { return U32(static_cast<uint32_t>(s.size())) + s; }

class MuxServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-mux-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/gpu.mux";
    auto listener = net::ListenUnix(path_);
    ASSERT_TRUE(listener.ok()) << listener.error().ToString();
    server_ = std::make_unique<MuxServer>(loop_, std::move(*listener), path_, host_);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void RunOnce() {
    Status s = loop_.RunOnce(10ms);
    EXPECT_TRUE(s.ok());
  }

  // A connected, non-blocking client.
  UniqueFd Connect() {
    auto fd = net::ConnectUnix(path_);
    EXPECT_TRUE(fd.ok());
    if (!fd.ok()) return UniqueFd();
    EXPECT_TRUE(net::SetNonBlocking(fd->get()).ok());
    return std::move(*fd);
  }

  void Send(int fd, const std::string& payload) {
    std::string packet = mux::FramePacket(payload);
    ASSERT_EQ(::send(fd, packet.data(), packet.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(packet.size()));
  }

  // The next message from the server, driving the loop for at most 5 s; nullopt at EOF
  // or timeout.
  std::optional<mux::ServerMessage> Receive(int fd) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      mux::Frame f = mux::ParseFrame(in_);
      if (f.state == mux::Frame::State::kDone) {
        auto m = mux::DecodeServerMessage(f.payload);
        in_.erase(0, f.consumed);
        if (!m.ok()) return std::nullopt;
        return *m;
      }
      RunOnce();
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) return std::nullopt;
      if (n > 0) in_.append(buf, static_cast<size_t>(n));
    }
    return std::nullopt;
  }

  // Hello both ways.
  void Greet(int fd) {
    auto hello = Receive(fd);
    ASSERT_TRUE(hello.has_value());
    ASSERT_EQ(hello->type, mux::kMsgHello);
    Send(fd, mux::EncodeClientHello());
  }

  std::string dir_;
  std::string path_;
  std::string in_;
  net::EventLoop loop_;
  FakeMuxHost host_{loop_};
  std::unique_ptr<MuxServer> server_;
};

TEST_F(MuxServerTest, AnswersAnAliveCheckFromItsOwner) {
  UniqueFd fd = Connect();
  Greet(fd.get());
  Send(fd.get(), mux::EncodeAliveCheck(7));
  auto alive = Receive(fd.get());
  ASSERT_TRUE(alive.has_value());
  EXPECT_EQ(alive->type, mux::kAlive);
  EXPECT_EQ(alive->id, 7u);
  EXPECT_EQ(alive->value, 4242u);
}

TEST_F(MuxServerTest, RefusesAPeerOfAnotherUidAndKeepsServingItsOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  // Open to everyone on the file system, so only the peer check stands in the way.
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);
  auto outcome =
      test_support::ConnectAsUid(path_, test_support::kNobodyUid,
                                 mux::FramePacket(mux::EncodeClientHello()), [&] { RunOnce(); });
  ASSERT_TRUE(outcome.ran);
  ASSERT_TRUE(outcome.connected) << "the socket file should let it connect";
  EXPECT_TRUE(outcome.eof) << "the server should close the connection";
  EXPECT_EQ(outcome.received, "") << "not even the hello: it is closed before it";
  EXPECT_EQ(server_->clients(), 0u);

  UniqueFd fd = Connect();
  Greet(fd.get());
  Send(fd.get(), mux::EncodeAliveCheck(8));
  auto alive = Receive(fd.get());
  ASSERT_TRUE(alive.has_value());
  EXPECT_EQ(alive->type, mux::kAlive);
}

TEST_F(MuxServerTest, RefusesAStdioForwardToAUnixSocketWithItsRequestId) {
  UniqueFd fd = Connect();
  Greet(fd.get());
  // ssh -W /run/x.sock: port kPortStreamLocal, which a 16-bit port would turn into 65534.
  Send(fd.get(),
       U32(mux::kNewStdioFwd) + U32(5) + Str("") + Str("/run/x.sock") + U32(mux::kPortStreamLocal));
  auto reply = Receive(fd.get());
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, mux::kFailure);
  EXPECT_EQ(reply->id, 5u);
  EXPECT_NE(reply->reason.find("unix socket"), std::string::npos) << reply->reason;
  EXPECT_EQ(host_.started(), 0u);
  // Its descriptors would follow: the server is done with this client, not with others.
  EXPECT_FALSE(Receive(fd.get()).has_value()) << "that client is closed";
  in_.clear();
  UniqueFd next = Connect();
  Greet(next.get());
  Send(next.get(), mux::EncodeAliveCheck(6));
  auto alive = Receive(next.get());
  ASSERT_TRUE(alive.has_value());
  EXPECT_EQ(alive->type, mux::kAlive);
}

TEST_F(MuxServerTest, RefusesAnOverlongTermWithItsRequestId) {
  UniqueFd fd = Connect();
  Greet(fd.get());
  mux::NewSession s;
  s.request_id = 9;
  s.term = std::string(100000, 'x');
  s.command = "true";
  Send(fd.get(), mux::EncodeNewSession(s));
  auto reply = Receive(fd.get());
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, mux::kFailure);
  EXPECT_EQ(reply->id, 9u);
  EXPECT_NE(reply->reason.find("TERM"), std::string::npos) << reply->reason;
  EXPECT_EQ(host_.started(), 0u);
}

TEST_F(MuxServerTest, AnswersAFailureWhenAHandlerThrowsAndServesTheNextClient) {
  host_.throw_from_pid = true;
  UniqueFd fd = Connect();
  Greet(fd.get());
  Send(fd.get(), mux::EncodeAliveCheck(11));
  auto reply = Receive(fd.get());
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, mux::kFailure);
  EXPECT_EQ(reply->id, 11u);
  EXPECT_NE(reply->reason.find("internal error"), std::string::npos) << reply->reason;
  EXPECT_FALSE(Receive(fd.get()).has_value()) << "that client is closed";

  host_.throw_from_pid = false;
  in_.clear();
  UniqueFd next = Connect();
  Greet(next.get());
  Send(next.get(), mux::EncodeAliveCheck(12));
  auto alive = Receive(next.get());
  ASSERT_TRUE(alive.has_value());
  EXPECT_EQ(alive->type, mux::kAlive);
}

TEST_F(MuxServerTest, StartsNoSessionForANewSessionWithoutDescriptors) {
  UniqueFd fd = Connect();
  Greet(fd.get());
  mux::NewSession s;
  s.request_id = 3;
  s.command = "true";
  Send(fd.get(), mux::EncodeNewSession(s));
  for (int i = 0; i < 20; ++i) RunOnce();
  EXPECT_EQ(host_.started(), 0u) << "it waits for the descriptors";
  fd.Reset();
  for (int i = 0; i < 200 && server_->clients() != 0; ++i) RunOnce();
  EXPECT_EQ(server_->clients(), 0u);
  EXPECT_EQ(host_.started(), 0u);
}

}  // namespace
}  // namespace tether::control
