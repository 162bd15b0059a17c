// A listener's caps (forward/listener_limits.h) on the real event loop: the handshake over
// the cap of handshakes in progress is answered "busy" in its own protocol, a handshake
// that names no target is closed at its deadline (the clock is the test's), connections
// over a listener's cap are refused, and every refusal is counted where `status` shows it.
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/forward_spec.h"
#include "daemon/control_api.h"
#include "forward/local_forward.h"
#include "forward/owner_check.h"
#include "forward/proxy_connections.h"
#include "forward/pump_set.h"
#include "forward/remote_forward.h"
#include "net/connect_pool.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "ssh/global_requests.h"

namespace tether::forward {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string S(const char* bytes, size_t n) { return std::string(bytes, n); }

const std::string kSocks5Greeting = S("\x05\x01\x00", 3);
const std::string kSocks5Connect = S("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10);
// Method "no authentication", then reply 0x01 (general failure), bound 0.0.0.0:0.
const std::string kSocks5Busy = S("\x05\x00", 2) + S("\x05\x01\x00\x01\0\0\0\0\0\0", 10);
const std::string kSocks4Connect = S("\x04\x01\x00\x50\x7f\x00\x00\x01", 8) + S("u\0", 2);
const std::string kSocks4Busy = S("\x00\x5b\0\0\0\0\0\0", 8);  // 0x5B: rejected
const std::string kHttpConnect = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n";

struct Pair {
  UniqueFd client;
  UniqueFd server;
};

Pair SocketPair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
  return Pair{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void Send(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

class Limits : public ::testing::Test {
 protected:
  // Runs the loop until `done` or 2 s (bounded: each round waits at most 20 ms).
  bool LoopUntil(const std::function<bool()>& done) {
    auto deadline = Clock::now() + 2s;
    while (!done() && Clock::now() < deadline) {
      if (!loop_.RunOnce(20ms).ok()) return false;
    }
    return done();
  }
  // Everything the client reads until the server's EOF (bounded by LoopUntil); `eof` says
  // whether it came.
  std::string ReadToEnd(int fd, bool* eof) {
    std::string got;
    *eof = false;
    LoopUntil([&] {
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) *eof = true;
      return *eof;
    });
    return got;
  }
  // A client the set holds in its handshake, having sent `first`.
  UniqueFd Hold(ProxyConnections& set, const std::string& first = "") {
    Pair p = SocketPair();
    set.Accept(std::move(p.server), "test #" + std::to_string(++n_));
    if (!first.empty()) Send(p.client.get(), first);
    EXPECT_TRUE(loop_.RunOnce(0ms).ok());
    return std::move(p.client);
  }

  // A remote forward's context on this loop, with its own pumps, requests and connects.
  RemoteForward::Context RemoteContext() {
    pump_context_.loop = &loop_;
    pumps_ = std::make_unique<PumpSet>(pump_context_);
    connects_ = std::make_unique<net::ConnectPool>(loop_);
    RemoteForward::Context context;
    context.loop = &loop_;
    context.pumps = pumps_.get();
    context.requests = &requests_;
    context.connects = connects_.get();
    return context;
  }

  net::EventLoop loop_;
  PumpContext pump_context_;
  std::unique_ptr<PumpSet> pumps_;
  ssh::GlobalRequests requests_;
  std::unique_ptr<net::ConnectPool> connects_;
  std::shared_ptr<ForwardStats> stats_ = std::make_shared<ForwardStats>();
  int n_ = 0;
  size_t handed_on_ = 0;
  ProxyConnections::Exit exit_ = [this](UniqueFd, std::unique_ptr<proxy::ProxyHandshake>,
                                        std::string) { ++handed_on_; };
};

ListenerLimits Small() {
  ListenerLimits l;
  l.max_handshakes = 2;
  l.max_busy = 2;
  return l;
}

struct Busy {
  const char* protocol;
  std::string request;
  std::string answer_prefix;  // what the busy answer starts with
  bool exact;                 // the whole answer
};

void PrintTo(const Busy& b, std::ostream* os) { *os << b.protocol; }

class HandshakeCap : public Limits, public ::testing::WithParamInterface<Busy> {};

TEST_P(HandshakeCap, TheHandshakeOverTheCapIsAnsweredBusyInItsProtocol) {
  ProxyConnections set(loop_, proxy::ProxyPolicy{}, exit_, stats_, Small());
  UniqueFd a = Hold(set);
  UniqueFd b = Hold(set, "\x05");  // half a greeting: still in its handshake
  ASSERT_EQ(set.handshakes(), 2u);

  Pair third = SocketPair();
  set.Accept(std::move(third.server), "test #3");
  EXPECT_EQ(set.handshakes(), 2u);
  EXPECT_EQ(stats_->refused_handshakes, 1u);
  // The client is answered once it has asked; nothing is handed to the exit.
  const std::string request = GetParam().request;
  if (GetParam().request == kSocks5Connect) {
    Send(third.client.get(), kSocks5Greeting);
    std::string method;
    ASSERT_TRUE(LoopUntil([&] {
      char buf[2];
      ssize_t n = ::recv(third.client.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) method.append(buf, static_cast<size_t>(n));
      return method.size() >= 2;
    }));
    EXPECT_EQ(method, S("\x05\x00", 2));
  }
  Send(third.client.get(), request);
  bool eof = false;
  std::string answer = ReadToEnd(third.client.get(), &eof);
  if (GetParam().request == kSocks5Connect) answer = S("\x05\x00", 2) + answer;
  EXPECT_TRUE(eof);
  if (GetParam().exact) {
    EXPECT_EQ(answer, GetParam().answer_prefix);
  } else {
    EXPECT_EQ(answer.rfind(GetParam().answer_prefix, 0), 0u) << answer;
  }
  EXPECT_EQ(handed_on_, 0u);
  EXPECT_EQ(stats_->handshake_timeouts, 0u);
}

INSTANTIATE_TEST_SUITE_P(Protocols, HandshakeCap,
                         ::testing::Values(Busy{"socks5", kSocks5Connect, kSocks5Busy, true},
                                           Busy{"socks4", kSocks4Connect, kSocks4Busy, true},
                                           Busy{"http", kHttpConnect,
                                                "HTTP/1.1 503 Service Unavailable\r\n", false}),
                         [](const auto& info) { return std::string(info.param.protocol); });

TEST_F(Limits, ASlotFreedByAFinishedHandshakeServesTheNextClient) {
  ProxyConnections set(loop_, proxy::ProxyPolicy{}, exit_, stats_, Small());
  UniqueFd a = Hold(set, kSocks4Connect);
  UniqueFd b = Hold(set);
  ASSERT_TRUE(LoopUntil([&] { return handed_on_ == 1; }));
  EXPECT_EQ(set.handshakes(), 1u);
  UniqueFd c = Hold(set, kSocks4Connect);
  ASSERT_TRUE(LoopUntil([&] { return handed_on_ == 2; }));
  EXPECT_EQ(stats_->refused_handshakes, 0u);
}

TEST_F(Limits, PastTheBusyCapAClientIsClosedAtOnce) {
  ProxyConnections set(loop_, proxy::ProxyPolicy{}, exit_, stats_, Small());
  std::vector<UniqueFd> held;
  for (int i = 0; i < 4; ++i) held.push_back(Hold(set));  // two in handshakes, two told busy
  EXPECT_EQ(set.size(), 4u);
  EXPECT_FALSE(set.can_answer_busy());
  Pair fifth = SocketPair();
  set.Accept(std::move(fifth.server), "test #5");
  EXPECT_EQ(set.size(), 4u);
  EXPECT_EQ(stats_->refused_handshakes, 3u);
  bool eof = false;
  EXPECT_EQ(ReadToEnd(fifth.client.get(), &eof), "");
  EXPECT_TRUE(eof);
}

TEST_F(Limits, AHandshakeThatNamesNoTargetIsClosedAtItsDeadline) {
  ListenerLimits limits = Small();
  limits.handshake_timeout = 10s;
  limits.busy_timeout = 2s;
  ProxyConnections set(loop_, proxy::ProxyPolicy{}, exit_, stats_, limits);
  const Clock::time_point start = Clock::now();
  UniqueFd slow = Hold(set, kSocks5Greeting);  // greeted, never asks
  UniqueFd other = Hold(set);
  UniqueFd busy = Hold(set);  // over the cap: told busy, and silent
  const Clock::time_point accepted = Clock::now();
  ASSERT_EQ(set.size(), 3u);

  // The busy one goes at its own, shorter deadline, and is no handshake timeout.
  set.Expire(accepted + 2s);
  EXPECT_EQ(set.size(), 2u);
  set.Expire(start + 9s);
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(stats_->handshake_timeouts, 0u);
  set.Expire(accepted + 10s);
  EXPECT_EQ(set.size(), 0u);
  EXPECT_EQ(stats_->handshake_timeouts, 2u);
  EXPECT_EQ(stats_->refused_handshakes, 1u);
  bool eof = false;
  EXPECT_EQ(ReadToEnd(slow.get(), &eof), S("\x05\x00", 2));  // its method selection, then EOF
  EXPECT_TRUE(eof);
  // Slots are free again.
  UniqueFd next = Hold(set, kSocks4Connect);
  EXPECT_TRUE(LoopUntil([&] { return handed_on_ == 1; }));
}

// A local forward with no session: its connections are held for the link, and count
// toward the listener's cap like served ones. -L on a unix socket, -D on loopback TCP.
class ListenerCap : public Limits {
 protected:
  void StartForward(config::ForwardKind kind) {
    std::string spec_text;
    if (kind == config::ForwardKind::kLocal) {
      char tmpl[] = "/tmp/tether-limits-XXXXXX";
      ASSERT_NE(::mkdtemp(tmpl), nullptr);
      dir_ = tmpl;
      path_ = dir_ + "/fwd.sock";
      spec_text = path_ + ":127.0.0.1:80";
    } else {
      auto probe = net::ListenTcp("127.0.0.1", 0);
      ASSERT_TRUE(probe.ok());
      auto port = net::LocalPort((*probe)[0].get());
      ASSERT_TRUE(port.ok());
      port_ = *port;  // free a moment ago; the forward binds it next
      spec_text = "127.0.0.1:" + std::to_string(port_);
    }
    auto spec = config::ParseForwardSpec(kind, spec_text);
    ASSERT_TRUE(spec.ok()) << spec.error().ToString();
    auto fwd = LocalForward::Bind(*spec, "testhost");
    ASSERT_TRUE(fwd.ok()) << fwd.error().ToString();
    fwd_ = std::move(*fwd);
    pump_context_.loop = &loop_;
    pumps_ = std::make_unique<PumpSet>(pump_context_);
    StartContext start;
    start.loop = &loop_;
    start.pumps = pumps_.get();
    start.limits.max_connections = 2;
    fwd_->Start(start);
  }
  void TearDown() override {
    fwd_.reset();
    pumps_.reset();
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  UniqueFd Connect() {
    auto c = path_.empty() ? net::ConnectTcp("127.0.0.1", port_, 2s) : net::ConnectUnix(path_);
    EXPECT_TRUE(c.ok()) << c.error().ToString();
    return c.ok() ? std::move(*c) : UniqueFd();
  }

  std::string dir_;
  std::string path_;
  uint16_t port_ = 0;
  std::unique_ptr<LocalForward> fwd_;
};

TEST_F(ListenerCap, ALocalForwardClosesTheConnectionOverItsCapAndCountsIt) {
  StartForward(config::ForwardKind::kLocal);
  UniqueFd a = Connect();
  UniqueFd b = Connect();
  ASSERT_TRUE(LoopUntil([&] { return fwd_->waiting() == 2; }));
  UniqueFd c = Connect();
  ASSERT_TRUE(LoopUntil([&] { return fwd_->stats()->refused_connections == 1; }));
  bool eof = false;
  EXPECT_EQ(ReadToEnd(c.get(), &eof), "");
  EXPECT_TRUE(eof);
  EXPECT_EQ(fwd_->waiting(), 2u);
  EXPECT_EQ(fwd_->open_connections(), 2u);

  const auto json = daemon::ControlApi::ForwardJson(*fwd_);
  EXPECT_EQ(json["refused"],
            (nlohmann::json{{"connections", 1}, {"handshakes", 0}, {"timeouts", 0}, {"owner", 0}}))
      << json.dump();
}

TEST_F(ListenerCap, ADynamicForwardAnswersTheConnectionOverItsCapBusy) {
  StartForward(config::ForwardKind::kDynamic);
  UniqueFd a = Connect();
  UniqueFd b = Connect();
  ASSERT_TRUE(LoopUntil([&] { return fwd_->waiting() == 2; }));
  UniqueFd c = Connect();
  ASSERT_TRUE(LoopUntil([&] { return fwd_->stats()->refused_connections == 1; }));
  Send(c.get(), kSocks4Connect);
  bool eof = false;
  EXPECT_EQ(ReadToEnd(c.get(), &eof), kSocks4Busy);
  EXPECT_TRUE(eof);
  EXPECT_EQ(fwd_->stats()->refused_handshakes, 0u);
}

}  // namespace
}  // namespace tether::forward

namespace tether::forward {
namespace {

// The server proxy's connections wait for the owner check, which answers one question at
// a time: past the cap of handshakes in progress the channel is closed at once, so that a
// flood from another account cannot queue hundreds ahead of the owner's own connection.
// The check here never answers; the channels are null (ssh_channel_free takes null).
TEST_F(Limits, ConnectionsWaitingForTheOwnerCheckAreCapped) {
  std::vector<UniqueFd> kept;  // the check's descriptors: nobody on the other side answers
  OwnerCheck check(
      loop_,
      [&](const std::string&, UniqueFd in, UniqueFd out, UniqueFd err, OwnerCheck::Ended) {
        kept.push_back(std::move(in));
        kept.push_back(std::move(out));
        kept.push_back(std::move(err));
      },
      "test");
  RemoteForward::Context context = RemoteContext();
  context.owner_check = &check;
  context.limits = Small();
  auto spec = config::ParseForwardSpec(config::ForwardKind::kRemote, "10808");
  ASSERT_TRUE(spec.ok()) << spec.error().ToString();
  ServerProxy proxy(*spec, "testhost", context, RemoteForward::ProxySettings{});
  for (uint16_t port = 40001; port <= 40003; ++port) {
    proxy.ServeServerChannel(nullptr, "127.0.0.1", port);
  }
  EXPECT_EQ(proxy.open_connections(), 2u);
  EXPECT_EQ(proxy.stats()->refused_handshakes, 1u);
  EXPECT_EQ(proxy.stats()->refused_connections, 0u);
}

// Connections the owner check refuses (another account's; one whose socket the server
// does not list) are counted as refused by the owner check, not as accepted nor failed.
// The test plays the check's shell loop on the server; the channels are null.
TEST_F(Limits, ConnectionsTheOwnerCheckRefusesAreCountedAsRefused) {
  UniqueFd server, server_in, server_err;
  OwnerCheck check(
      loop_,
      [&](const std::string&, UniqueFd in, UniqueFd out, UniqueFd err, OwnerCheck::Ended) {
        server_in = std::move(in);
        server = std::move(out);
        server_err = std::move(err);
      },
      "test");
  RemoteForward::Context context = RemoteContext();
  context.owner_check = &check;
  auto spec = config::ParseForwardSpec(config::ForwardKind::kRemote, "10808");
  ASSERT_TRUE(spec.ok()) << spec.error().ToString();
  ServerProxy proxy(*spec, "testhost", context, RemoteForward::ProxySettings{});
  proxy.ServeServerChannel(nullptr, "127.0.0.1", 50000);  // C350: uid 1001's
  proxy.ServeServerChannel(nullptr, "127.0.0.1", 50001);  // C351: not in the table
  ASSERT_TRUE(server);
  // The greeting, then the answers: 127.0.0.1:50000 connected to the listener (not
  // listening here, so its port is 0) by uid 1001; nothing for 50001.
  const std::string says =
      "uid 1000\n"
      "   1: 0100007F:C350 0100007F:0000 01 00000000:00000000 00:00000000 00000000 1001 0 4242 "
      "1 0000000000000000 20 4 30 10 -1\nend\nend\n";
  ASSERT_EQ(::write(server.get(), says.data(), says.size()), static_cast<ssize_t>(says.size()));
  ASSERT_TRUE(LoopUntil([&] { return proxy.stats()->refused_owner == 2; }))
      << proxy.stats()->refused_owner;
  EXPECT_EQ(proxy.open_connections(), 0u);
  EXPECT_EQ(proxy.stats()->failed, 0u);
  EXPECT_EQ(proxy.stats()->total, 0u);
  const auto json = daemon::ControlApi::ForwardJson(proxy);
  EXPECT_EQ(json["refused"]["owner"], 2) << json.dump();
  EXPECT_EQ(json["failed"], 0) << json.dump();
}

// A -R forward's connections over the listener's cap: the channel is closed at once.
TEST_F(Limits, ARemoteForwardClosesTheChannelOverItsCap) {
  RemoteForward::Context context = RemoteContext();
  context.limits.max_connections = 2;
  auto spec = config::ParseForwardSpec(config::ForwardKind::kRemote, "10809:127.0.0.1:9");
  ASSERT_TRUE(spec.ok()) << spec.error().ToString();
  RemoteForward fwd(*spec, "testhost", context, RemoteForward::ProxySettings{});
  // Each connects to its target meanwhile (the loop does not run: they stay connecting).
  for (uint16_t port = 40001; port <= 40003; ++port) {
    fwd.ServeServerChannel(nullptr, "127.0.0.1", port);
  }
  EXPECT_EQ(fwd.open_connections(), 2u);
  EXPECT_EQ(fwd.stats()->refused_connections, 1u);
}

}  // namespace
}  // namespace tether::forward
