#include "control/mux_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

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

// MUX_C_OPEN_FWD or MUX_C_CLOSE_FWD, as ssh -O forward / -O cancel send it.
std::string ForwardRequest(uint32_t type, uint32_t request_id, uint32_t kind, uint32_t listen_port,
                           uint32_t connect_port = 22) {
  return U32(type) + U32(request_id) + U32(kind) + Str("localhost") + U32(listen_port) +
         Str("db.internal") + U32(connect_port);
}

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

  // Drives the loop until the server closes `fd` (true), or until a message arrives or
  // 5 s pass (false). A server that closes with bytes of ours unread resets instead.
  bool ClosedByServer(int fd) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (mux::ParseFrame(in_).state == mux::Frame::State::kDone) return false;
      RunOnce();
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n > 0) in_.append(buf, static_cast<size_t>(n));
    }
    return false;
  }

  // Descriptors as ssh's mm_send_fd passes them: `per_message` in each sendmsg (ssh: one),
  // with one byte of data per message.
  void SendFds(int sock, size_t count, size_t per_message = 1) {
    for (size_t sent = 0; sent < count; sent += per_message) {
      const size_t n = std::min(per_message, count - sent);
      std::vector<UniqueFd> fds;
      std::vector<int> raw;
      for (size_t i = 0; i < n; ++i) {
        fds.emplace_back(::open("/dev/null", O_RDWR | O_CLOEXEC));
        ASSERT_TRUE(fds.back().valid());
        raw.push_back(fds.back().get());
      }
      char byte = 0;
      iovec iov{&byte, 1};
      std::vector<char> control(CMSG_SPACE(sizeof(int) * n));
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
      std::memcpy(CMSG_DATA(cm), raw.data(), sizeof(int) * n);
      ASSERT_EQ(::sendmsg(sock, &msg, MSG_NOSIGNAL), 1);
    }
  }

  // A new session running `command`, without its descriptors.
  void RequestSession(int fd, uint32_t request_id, const std::string& command) {
    mux::NewSession s;
    s.request_id = request_id;
    s.command = command;
    Send(fd, mux::EncodeNewSession(s));
  }
  // The same with its three descriptors.
  void StartSession(int fd, uint32_t request_id, const std::string& command) {
    RequestSession(fd, request_id, command);
    SendFds(fd, 3);
  }

  // The next message, which must be of `type`.
  mux::ServerMessage Expect(int fd, uint32_t type) {
    auto m = Receive(fd);
    EXPECT_TRUE(m.has_value()) << "no message of type 0x" << std::hex << type;
    if (!m.has_value()) return {};
    EXPECT_EQ(m->type, type) << std::hex << "0x" << m->type << " " << m->reason;
    return *m;
  }

  // The client still gets answers.
  void ExpectServed(int fd, uint32_t request_id) {
    Send(fd, mux::EncodeAliveCheck(request_id));
    EXPECT_EQ(Expect(fd, mux::kAlive).id, request_id);
  }

  // Hello both ways.
  void Greet(int fd) {
    auto hello = Receive(fd);
    ASSERT_TRUE(hello.has_value());
    ASSERT_EQ(hello->type, mux::kMsgHello);
    Send(fd, mux::EncodeClientHello());
  }
  // A client past the hello.
  UniqueFd Greeted() {
    UniqueFd fd = Connect();
    Greet(fd.get());
    return fd;
  }

  std::string dir_;
  std::string path_;
  std::string in_;
  net::EventLoop loop_;
  FakeMuxHost host_{loop_};
  std::unique_ptr<MuxServer> server_;
};

TEST_F(MuxServerTest, AnswersAnAliveCheckFromItsOwner) {
  UniqueFd fd = Greeted();
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

  UniqueFd fd = Greeted();
  Send(fd.get(), mux::EncodeAliveCheck(8));
  auto alive = Receive(fd.get());
  ASSERT_TRUE(alive.has_value());
  EXPECT_EQ(alive->type, mux::kAlive);
}

TEST_F(MuxServerTest, RefusesAStdioForwardToAUnixSocketWithItsRequestId) {
  UniqueFd fd = Greeted();
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
  UniqueFd next = Greeted();
  Send(next.get(), mux::EncodeAliveCheck(6));
  auto alive = Receive(next.get());
  ASSERT_TRUE(alive.has_value());
  EXPECT_EQ(alive->type, mux::kAlive);
}

TEST_F(MuxServerTest, RefusesAnOverlongTermWithItsRequestId) {
  UniqueFd fd = Greeted();
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
  UniqueFd fd = Greeted();
  Send(fd.get(), mux::EncodeAliveCheck(11));
  auto reply = Receive(fd.get());
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->type, mux::kFailure);
  EXPECT_EQ(reply->id, 11u);
  EXPECT_NE(reply->reason.find("internal error"), std::string::npos) << reply->reason;
  EXPECT_FALSE(Receive(fd.get()).has_value()) << "that client is closed";

  host_.throw_from_pid = false;
  in_.clear();
  UniqueFd next = Greeted();
  Send(next.get(), mux::EncodeAliveCheck(12));
  auto alive = Receive(next.get());
  ASSERT_TRUE(alive.has_value());
  EXPECT_EQ(alive->type, mux::kAlive);
}

TEST_F(MuxServerTest, StartsNoSessionForANewSessionWithoutDescriptors) {
  UniqueFd fd = Greeted();
  RequestSession(fd.get(), 3, "true");
  for (int i = 0; i < 20; ++i) RunOnce();
  EXPECT_EQ(host_.started(), 0u) << "it waits for the descriptors";
  fd.Reset();
  for (int i = 0; i < 200 && server_->clients() != 0; ++i) RunOnce();
  EXPECT_EQ(server_->clients(), 0u);
  EXPECT_EQ(host_.started(), 0u);
}

// --- the hello

TEST_F(MuxServerTest, DropsAClientThatSpeaksAnotherVersion) {
  UniqueFd fd = Connect();
  ASSERT_EQ(Expect(fd.get(), mux::kMsgHello).value, mux::kMuxVersion);
  Send(fd.get(), U32(mux::kMsgHello) + U32(3));
  EXPECT_TRUE(ClosedByServer(fd.get()));
  EXPECT_EQ(server_->clients(), 0u);
}

TEST_F(MuxServerTest, DropsAClientWhoseFirstRequestIsNotAHello) {
  UniqueFd fd = Connect();
  Expect(fd.get(), mux::kMsgHello);
  Send(fd.get(), mux::EncodeAliveCheck(1));
  EXPECT_TRUE(ClosedByServer(fd.get())) << "answered before its hello";
}

TEST_F(MuxServerTest, DropsAClientWhoseFirstRequestIsOfAnUnknownType) {
  UniqueFd fd = Connect();
  Expect(fd.get(), mux::kMsgHello);
  Send(fd.get(), U32(0x10000099) + U32(1));
  EXPECT_TRUE(ClosedByServer(fd.get()));
}

// --- sessions and their descriptors

TEST_F(MuxServerTest, StartsASessionWithItsDescriptorsAndReportsItsExit) {
  UniqueFd fd = Greeted();
  mux::NewSession s;
  s.request_id = 21;
  s.want_tty = true;
  s.term = "xterm";
  s.command = "uname -a";
  s.env = {"LANG=C.UTF-8"};
  Send(fd.get(), mux::EncodeNewSession(s));
  SendFds(fd.get(), 3);
  auto opened = Expect(fd.get(), mux::kSessionOpened);
  EXPECT_EQ(opened.id, 21u);
  ASSERT_EQ(host_.session_requests.size(), 1u);
  const auto& got = host_.session_requests[0];
  EXPECT_EQ(got.command, "uname -a");
  EXPECT_EQ(got.term, "xterm");
  EXPECT_TRUE(got.want_tty);
  EXPECT_EQ(got.env, std::vector<std::string>{"LANG=C.UTF-8"});
  auto exit = Expect(fd.get(), mux::kExitMessage);
  EXPECT_EQ(exit.id, opened.value) << "the exit names the session";
  EXPECT_EQ(exit.value, 0u);
  EXPECT_TRUE(ClosedByServer(fd.get())) << "one session per client, then it closes";
  EXPECT_EQ(host_.ended(), 0u) << "the session finished itself";
}

TEST_F(MuxServerTest, StartsASessionOnceItsLastDescriptorArrives) {
  UniqueFd fd = Greeted();
  RequestSession(fd.get(), 22, "true");
  SendFds(fd.get(), 2);
  for (int i = 0; i < 20; ++i) RunOnce();
  EXPECT_EQ(host_.started(), 0u) << "two descriptors of three";
  SendFds(fd.get(), 1);
  EXPECT_EQ(Expect(fd.get(), mux::kSessionOpened).id, 22u);
  EXPECT_EQ(host_.started(), 1u);
}

TEST_F(MuxServerTest, ReportsASessionThatCouldNotStartAndClosesItsClient) {
  host_.start_error = "no shell";
  UniqueFd fd = Greeted();
  StartSession(fd.get(), 23, "true");
  auto reply = Expect(fd.get(), mux::kFailure);
  EXPECT_EQ(reply.id, 23u);
  EXPECT_EQ(reply.reason, "no shell");
  EXPECT_TRUE(ClosedByServer(fd.get()));
}

TEST_F(MuxServerTest, ReportsARefusedPtyAfterTheSessionOpened) {
  host_.tty_fails = true;
  UniqueFd fd = Greeted();
  StartSession(fd.get(), 24, "true");
  auto opened = Expect(fd.get(), mux::kSessionOpened);
  EXPECT_EQ(Expect(fd.get(), mux::kTtyAllocFail).id, opened.value);
  Expect(fd.get(), mux::kExitMessage);
}

TEST_F(MuxServerTest, RefusesASecondSessionOnOneClient) {
  UniqueFd fd = Greeted();
  StartSession(fd.get(), 25, "sleep 60");
  Expect(fd.get(), mux::kSessionOpened);
  StartSession(fd.get(), 26, "true");
  auto reply = Expect(fd.get(), mux::kFailure);
  EXPECT_EQ(reply.id, 26u);
  EXPECT_NE(reply.reason.find("Multiple sessions"), std::string::npos) << reply.reason;
  EXPECT_EQ(host_.started(), 1u);
  EXPECT_EQ(host_.live(), 1u) << "the first one runs on";
}

TEST_F(MuxServerTest, EndsTheSessionWhenItsClientGoes) {
  UniqueFd fd = Greeted();
  StartSession(fd.get(), 27, "sleep 60");
  Expect(fd.get(), mux::kSessionOpened);
  fd.Reset();
  for (int i = 0; i < 200 && server_->clients() != 0; ++i) RunOnce();
  EXPECT_EQ(server_->clients(), 0u);
  EXPECT_EQ(host_.ended(), 1u);
  EXPECT_EQ(host_.live(), 0u);
}

TEST_F(MuxServerTest, CarriesAStdioForwardAndClosesWithoutAnExitMessage) {
  UniqueFd fd = Greeted();
  Send(fd.get(), U32(mux::kNewStdioFwd) + U32(31) + Str("") + Str("db.internal") + U32(5432));
  SendFds(fd.get(), 2);
  EXPECT_EQ(Expect(fd.get(), mux::kSessionOpened).id, 31u);
  ASSERT_EQ(host_.stdio_requests.size(), 1u);
  EXPECT_EQ(host_.stdio_requests[0].host, "db.internal");
  EXPECT_EQ(host_.stdio_requests[0].port, 5432u);
  EXPECT_TRUE(ClosedByServer(fd.get())) << "ssh -W takes no exit message";
}

TEST_F(MuxServerTest, RefusesAStdioForwardWithoutAPortWithItsRequestId) {
  UniqueFd fd = Greeted();
  Send(fd.get(), U32(mux::kNewStdioFwd) + U32(32) + Str("") + Str("db.internal") + U32(0));
  auto reply = Expect(fd.get(), mux::kFailure);
  EXPECT_EQ(reply.id, 32u);
  EXPECT_TRUE(ClosedByServer(fd.get())) << "its descriptors would follow";
  EXPECT_EQ(host_.started(), 0u);
}

TEST_F(MuxServerTest, RefusesASubsystemWithoutANameWithItsRequestId) {
  UniqueFd fd = Greeted();
  mux::NewSession s;
  s.request_id = 33;
  s.subsystem = true;
  Send(fd.get(), mux::EncodeNewSession(s));
  auto reply = Expect(fd.get(), mux::kFailure);
  EXPECT_EQ(reply.id, 33u);
  EXPECT_NE(reply.reason.find("subsystem"), std::string::npos) << reply.reason;
  EXPECT_EQ(host_.started(), 0u);
}

// --- the other requests

TEST_F(MuxServerTest, AnswersTerminateWithAnOkAndStopsTheDaemon) {
  UniqueFd fd = Greeted();
  Send(fd.get(), U32(mux::kTerminate) + U32(41));
  EXPECT_EQ(Expect(fd.get(), mux::kOk).id, 41u);
  EXPECT_EQ(host_.terminated(), 1);
}

TEST_F(MuxServerTest, OpensAndClosesForwardsAndReportsTheirFailures) {
  UniqueFd fd = Greeted();
  Send(fd.get(), ForwardRequest(mux::kOpenFwd, 42, mux::kFwdLocal, 8080));
  EXPECT_EQ(Expect(fd.get(), mux::kOk).id, 42u);
  // ssh -R 0:...: the port the server chose comes back.
  Send(fd.get(), ForwardRequest(mux::kOpenFwd, 43, mux::kFwdRemote, 0));
  auto port = Expect(fd.get(), mux::kRemotePort);
  EXPECT_EQ(port.id, 43u);
  EXPECT_EQ(port.value, 40000u);
  Send(fd.get(), ForwardRequest(mux::kOpenFwd, 44, mux::kFwdDynamic, 1081, 0));
  auto refused = Expect(fd.get(), mux::kFailure);
  EXPECT_EQ(refused.id, 44u);
  EXPECT_EQ(refused.reason, "port in use");
  Send(fd.get(), ForwardRequest(mux::kCloseFwd, 45, mux::kFwdLocal, 8080));
  EXPECT_EQ(Expect(fd.get(), mux::kOk).id, 45u);
  Send(fd.get(), ForwardRequest(mux::kCloseFwd, 46, mux::kFwdLocal, 8081));
  auto unknown = Expect(fd.get(), mux::kFailure);
  EXPECT_EQ(unknown.id, 46u);
  EXPECT_EQ(unknown.reason, "no forward listens there");

  ASSERT_EQ(host_.forward_requests.size(), 5u);
  EXPECT_EQ(host_.forward_requests[0].type, mux::kFwdLocal);
  EXPECT_EQ(host_.forward_requests[0].listen_host, "localhost");
  EXPECT_EQ(host_.forward_requests[0].connect_host, "db.internal");
  EXPECT_EQ(host_.forward_requests[0].connect_port, 22u);
  EXPECT_FALSE(host_.forward_requests[0].close);
  EXPECT_EQ(host_.forward_requests[1].type, mux::kFwdRemote);
  EXPECT_TRUE(host_.forward_requests[3].close);
  ExpectServed(fd.get(), 47);
}

TEST_F(MuxServerTest, StopsListeningAndServesTheClientsItHas) {
  UniqueFd fd = Greeted();
  Send(fd.get(), U32(mux::kStopListening) + U32(51));
  EXPECT_EQ(Expect(fd.get(), mux::kOk).id, 51u);
  EXPECT_FALSE(std::filesystem::exists(path_)) << "the socket file stays";
  EXPECT_FALSE(net::ConnectUnix(path_).ok());
  ExpectServed(fd.get(), 52);
}

TEST_F(MuxServerTest, RefusesProxyModeWithItsRequestIdAndGoesOn) {
  UniqueFd fd = Greeted();
  Send(fd.get(), U32(mux::kProxy) + U32(61));
  auto reply = Expect(fd.get(), mux::kFailure);
  EXPECT_EQ(reply.id, 61u);
  EXPECT_NE(reply.reason.find("proxy"), std::string::npos) << reply.reason;
  ExpectServed(fd.get(), 62);
}

TEST_F(MuxServerTest, AnswersAnUnknownRequestWithItsRequestIdAndGoesOn) {
  UniqueFd fd = Greeted();
  Send(fd.get(), U32(0x10000099) + U32(71));
  auto reply = Expect(fd.get(), mux::kFailure);
  EXPECT_EQ(reply.id, 71u);
  EXPECT_NE(reply.reason.find("0x10000099"), std::string::npos) << reply.reason;
  // A reply type sent by a client is no request either.
  Send(fd.get(), U32(mux::kOk) + U32(72));
  EXPECT_EQ(Expect(fd.get(), mux::kFailure).id, 72u);
  ExpectServed(fd.get(), 73);
}

// --- bad frames

TEST_F(MuxServerTest, DropsAClientThatAnnouncesAnOversizePacket) {
  UniqueFd fd = Greeted();
  // Refused on its length alone: the server does not wait for 256 KiB to arrive.
  std::string header = U32(static_cast<uint32_t>(mux::kMaxPacketBytes + 1)) + U32(mux::kAliveCheck);
  ASSERT_EQ(::send(fd.get(), header.data(), header.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(header.size()));
  EXPECT_TRUE(ClosedByServer(fd.get()));
  EXPECT_EQ(server_->clients(), 0u);
}

TEST_F(MuxServerTest, DropsAClientThatSendsATruncatedRequest) {
  UniqueFd fd = Greeted();
  // A whole packet whose payload stops short: an alive check without its request id.
  Send(fd.get(), U32(mux::kAliveCheck));
  EXPECT_TRUE(ClosedByServer(fd.get()));

  in_.clear();
  UniqueFd next = Greeted();
  // A forward request cut before its connect port.
  Send(next.get(), U32(mux::kOpenFwd) + U32(81) + U32(mux::kFwdLocal) + Str("localhost") +
                       U32(8080) + Str("db.internal"));
  EXPECT_TRUE(ClosedByServer(next.get()));
  EXPECT_TRUE(host_.forward_requests.empty());
}

TEST_F(MuxServerTest, ServesAPacketThatArrivesAByteAtATime) {
  UniqueFd fd = Greeted();
  std::string packet = mux::FramePacket(mux::EncodeAliveCheck(91));
  for (char byte : packet) {
    ASSERT_EQ(::send(fd.get(), &byte, 1, MSG_NOSIGNAL), 1);
    RunOnce();
  }
  EXPECT_EQ(Expect(fd.get(), mux::kAlive).id, 91u);
}

TEST_F(MuxServerTest, DropsAClientThatSendsMoreDescriptorsThanARequestTakes) {
  UniqueFd fd = Greeted();
  // The start of a packet, so that the descriptors' bytes are read as more of it and no
  // request ever takes them.
  const std::string header = U32(100);
  ASSERT_EQ(::send(fd.get(), header.data(), header.size(), MSG_NOSIGNAL), 4);
  SendFds(fd.get(), 8);  // one at a time, as ssh sends them
  for (int i = 0; i < 20; ++i) RunOnce();
  EXPECT_EQ(server_->clients(), 1u) << "8 in flight are allowed";
  SendFds(fd.get(), 1);
  EXPECT_TRUE(ClosedByServer(fd.get()));
  EXPECT_EQ(host_.started(), 0u);
}

TEST_F(MuxServerTest, DropsAClientThatSendsTooManyDescriptorsInOneMessage) {
  UniqueFd fd = Greeted();
  SendFds(fd.get(), 5, 5);  // more than its control buffer holds: the kernel truncates
  EXPECT_TRUE(ClosedByServer(fd.get()));
  EXPECT_EQ(host_.started(), 0u);

  in_.clear();
  UniqueFd next = Greeted();
  ExpectServed(next.get(), 92);
}

}  // namespace
}  // namespace tether::control
