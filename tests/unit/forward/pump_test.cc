#include "forward/pump.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "forward/fake_channel.h"
#include "forward/pump_rig.h"

namespace tether::forward {
namespace {

using namespace std::chrono_literals;
using testing::MakeSocketPair;
using testing::Pattern;
using testing::ReadAll;
using testing::Unread;
using testing::WriteAll;
using OpenState = ssh::ChannelIo::OpenState;

// One pump between a socketpair and a fake channel, its socket watched on the rig's loop
// as a PumpSet watches it (the loop runs it on the socket's events).
struct Stream {
  UniqueFd peer;  // the local client's end
  int local = -1;
  std::shared_ptr<FakeChannel::Server> server = std::make_shared<FakeChannel::Server>();
  std::shared_ptr<ForwardStats> stats = std::make_shared<ForwardStats>();
  std::unique_ptr<Pump> pump;
  int wakeups = 0;  // the loop ran it
};

class PumpTest : public ::testing::Test {
 protected:
  // A stream whose channel's open comes to `open`, run once.
  struct Options {
    OpenState open = OpenState::kOpen;
    PumpHooks hooks;
    int send_buffer = 0;
  };
  Stream& Open(Options options) {
    auto stream = std::make_unique<Stream>();
    Stream* s = stream.get();
    auto pair = MakeSocketPair(options.send_buffer);
    s->peer = std::move(pair.peer);
    s->local = pair.local.get();
    s->server->open = options.open;
    rig_->loop().Watch(s->local, net::kNone, [s](unsigned) {
      ++s->wakeups;
      s->pump->Service();
    });
    s->pump = std::make_unique<Pump>(
        rig_->context(), std::move(pair.local), std::make_unique<FakeChannel>(s->server), s->stats,
        "test " + std::to_string(streams_.size()), std::move(options.hooks));
    s->pump->Service();
    streams_.push_back(std::move(stream));
    return *s;
  }
  Stream& Open() { return Open(Options{}); }
  // A socket whose send buffer is small: a reader that does not read fills it quickly.
  Stream& OpenWithSmallSendBuffer() {
    Options options;
    options.send_buffer = 16 << 10;
    return Open(std::move(options));
  }
  Stream& OpenPending(PumpHooks hooks) {
    Options options;
    options.open = OpenState::kPending;
    options.hooks = std::move(hooks);
    return Open(std::move(options));
  }

  // The window the pump grants now (it asks for it on every read).
  uint32_t Window(Stream& s) {
    s.pump->Service();
    return s.server->window;
  }

  // The server sends `bytes` (in pieces that the socket takes whole) and the client reads
  // them as they come: a reader that keeps up.
  void Download(Stream& s, size_t bytes) {
    constexpr size_t kPiece = 16u << 10;
    size_t received = 0;
    for (size_t sent = 0; sent < bytes; sent += kPiece) {
      s.server->to_pump.append(std::min(kPiece, bytes - sent), 'x');
      s.pump->Service();
      received += ReadAll(s.peer.get()).bytes.size();
    }
    ASSERT_EQ(received, bytes);
    ASSERT_TRUE(s.server->to_pump.empty());
  }

  std::unique_ptr<testing::PumpContextRig> rig_ = std::make_unique<testing::PumpContextRig>();
  std::vector<std::unique_ptr<Stream>> streams_;
};

TEST_F(PumpTest, CarriesBytesBothWaysAndCountsThem) {
  Stream& s = Open();
  s.server->to_pump = Pattern(5000);
  WriteAll(s.peer.get(), Pattern(3000, 7));
  rig_->Spin();  // the socket is readable: the loop runs the pump
  s.pump->Service();
  EXPECT_EQ(ReadAll(s.peer.get()).bytes, Pattern(5000));
  EXPECT_EQ(s.server->from_pump, Pattern(3000, 7));
  EXPECT_GT(s.wakeups, 0);
  EXPECT_EQ(s.stats->bytes_in, 5000u);
  EXPECT_EQ(s.stats->bytes_out, 3000u);
  EXPECT_EQ(s.stats->live, 1u);
  EXPECT_FALSE(s.pump->done());
  s.pump.reset();
  EXPECT_EQ(s.stats->live, 0u);
  EXPECT_TRUE(s.server->destroyed) << "the pump closes its channel";
}

TEST_F(PumpTest, LeavesTheSocketUnreadWhileTheRemoteWindowIsClosed) {
  Stream& s = Open();
  s.server->remote_window = 0;
  WriteAll(s.peer.get(), Pattern(1000));
  s.pump->Service();
  rig_->Spin();
  EXPECT_EQ(s.server->from_pump, "");
  EXPECT_EQ(Unread(s.local), 1000) << "read while nothing could go to the server";
  EXPECT_EQ(s.wakeups, 0) << "the socket should be out of poll";
  EXPECT_TRUE(s.pump->blocked_on_window()) << "its owner must retry it";

  // A window of 300 takes 300 bytes, and the rest stays in the socket.
  s.server->remote_window = 300;
  s.pump->Service();
  EXPECT_EQ(s.server->from_pump, Pattern(300));
  EXPECT_EQ(Unread(s.local), 700);
  EXPECT_TRUE(s.pump->blocked_on_window());

  s.server->remote_window = 1u << 20;
  s.pump->Service();
  EXPECT_EQ(s.server->from_pump, Pattern(1000));
  EXPECT_FALSE(s.pump->blocked_on_window());
}

TEST_F(PumpTest, LeavesTheSocketUnreadWhileBytesWaitForTheChannel) {
  Stream& s = Open();
  s.server->writes_wait = true;  // a key re-exchange: the channel takes nothing for now
  WriteAll(s.peer.get(), Pattern(1000));
  s.pump->Service();
  EXPECT_EQ(Unread(s.local), 0) << "read once, and held";
  WriteAll(s.peer.get(), Pattern(500, 1000));
  s.pump->Service();
  const int wakeups = s.wakeups;
  rig_->Spin();
  EXPECT_EQ(Unread(s.local), 500) << "read again while the first bytes were still pending";
  EXPECT_EQ(s.wakeups, wakeups) << "the socket should be out of poll";
  EXPECT_EQ(s.server->from_pump, "");

  s.server->writes_wait = false;
  s.pump->Service();
  EXPECT_EQ(s.server->from_pump, Pattern(1500)) << "in order, nothing lost";
}

TEST_F(PumpTest, LeavesTheChannelUnreadWhileBytesWaitForTheSocket) {
  Stream& s = OpenWithSmallSendBuffer();
  const std::string data = Pattern(1u << 20);
  s.server->to_pump = data;
  s.pump->Service();
  ASSERT_FALSE(s.server->to_pump.empty());
  const int reads = s.server->reads;
  const size_t left = s.server->to_pump.size();
  for (int i = 0; i < 5; ++i) s.pump->Service();
  rig_->Spin();
  EXPECT_EQ(s.server->reads, reads) << "the channel was read with bytes still for the socket";
  EXPECT_EQ(s.server->to_pump.size(), left);

  // As the client reads, the socket turns writable and the loop runs the pump.
  std::string received;
  for (int i = 0; i < 10000 && received.size() < data.size(); ++i) {
    received += ReadAll(s.peer.get()).bytes;
    rig_->Spin();
  }
  EXPECT_GT(s.wakeups, 0);
  EXPECT_EQ(received.size(), data.size());
  EXPECT_TRUE(received == data) << "bytes reordered or lost";
}

TEST_F(PumpTest, PassesTheSocketsEofToTheChannelWhileTheServerKeepsSending) {
  Stream& s = Open();
  WriteAll(s.peer.get(), "request");
  ASSERT_EQ(::shutdown(s.peer.get(), SHUT_WR), 0);
  rig_->Spin();
  EXPECT_EQ(s.server->from_pump, "request");
  EXPECT_TRUE(s.server->eof_received);

  s.server->to_pump = Pattern(4000);
  s.pump->Service();
  auto got = ReadAll(s.peer.get());
  EXPECT_EQ(got.bytes, Pattern(4000));
  EXPECT_FALSE(got.eof);
  EXPECT_FALSE(s.pump->done());

  s.server->eof = true;
  s.pump->Service();
  EXPECT_TRUE(ReadAll(s.peer.get()).eof);
  EXPECT_TRUE(s.pump->done()) << "both sides closed";
}

TEST_F(PumpTest, ShutsTheSocketForWritingOnTheServersEofAndKeepsCarryingTheClient) {
  Stream& s = Open();
  s.server->to_pump = "response";
  s.server->eof = true;
  s.pump->Service();
  auto got = ReadAll(s.peer.get());
  EXPECT_EQ(got.bytes, "response");
  EXPECT_TRUE(got.eof) << "shutdown(SHUT_WR) after the last byte";

  WriteAll(s.peer.get(), Pattern(2000));
  rig_->Spin();
  EXPECT_EQ(s.server->from_pump, Pattern(2000));
  EXPECT_FALSE(s.server->eof_received);
  EXPECT_FALSE(s.pump->done());
}

TEST_F(PumpTest, EndsWhenTheServerClosesTheChannel) {
  Stream& s = Open();
  s.server->to_pump = "last";
  s.server->closed = true;
  s.pump->Service();
  auto got = ReadAll(s.peer.get());
  EXPECT_EQ(got.bytes, "last");
  EXPECT_TRUE(got.eof);
  EXPECT_TRUE(s.pump->done());
}

TEST_F(PumpTest, StartsAtTheStartWindowAndDoublesForEveryWindowTheSocketDrains) {
  Stream& s = Open();
  EXPECT_EQ(Window(s), kStartWindow);
  Download(s, kStartWindow - (16u << 10));
  EXPECT_EQ(Window(s), kStartWindow) << "a window not yet drained";
  Download(s, 16u << 10);
  EXPECT_EQ(Window(s), 2 * kStartWindow);
  for (uint32_t w = 2 * kStartWindow; w < kInitialWindow; w *= 2) {
    Download(s, w);
    EXPECT_EQ(Window(s), 2 * w);
  }
  EXPECT_EQ(Window(s), kInitialWindow);
  EXPECT_EQ(s.server->stall_takes, 0) << "start-up growth does not wait for stalls";
}

TEST_F(PumpTest, GrowsNoWindowForAReaderThatLags) {
  // Every window's worth fills the socket's buffer: the reader takes it all, but never
  // keeps up.
  Stream& s = OpenWithSmallSendBuffer();
  const size_t total = 4 * size_t{kStartWindow};
  s.server->to_pump.assign(total, 'x');
  size_t received = 0;
  for (int i = 0; i < 100000 && received < total; ++i) {
    s.pump->Service();
    EXPECT_EQ(s.server->window, kStartWindow) << "after " << received << " bytes";
    received += ReadAll(s.peer.get()).bytes.size();
  }
  EXPECT_EQ(received, total);
}

TEST_F(PumpTest, GrowsPastTheInitialWindowOnlyAfterStalledHalvesInARow) {
  Stream& s = Open();
  Download(s, 15 * size_t{kStartWindow});  // 128 + 256 + 512 + 1024 KiB: at kInitialWindow
  ASSERT_EQ(Window(s), kInitialWindow);

  // A server that never keeps us waiting long: the window is not what limits the stream.
  s.server->stall = kWindowStall - 1ms;
  Download(s, 4 * size_t{kInitialWindow});
  EXPECT_EQ(Window(s), kInitialWindow);

  // Stalled half-windows: one is not enough, two in a row double it.
  s.server->stall = kWindowStall;
  Download(s, kInitialWindow / 2);
  EXPECT_EQ(Window(s), kInitialWindow);
  Download(s, kInitialWindow / 2);
  EXPECT_EQ(Window(s), 2 * kInitialWindow);

  // A half without a stall starts the count again (halves of the new window now).
  const uint32_t w = 2 * kInitialWindow;
  Download(s, w / 2);  // stalled: one
  s.server->stall = {};
  Download(s, w / 2);  // not: none
  s.server->stall = kWindowStall;
  Download(s, w / 2);  // one
  EXPECT_EQ(Window(s), w);
  Download(s, w / 2);  // two
  EXPECT_EQ(Window(s), 2 * w);
}

TEST_F(PumpTest, TheBudgetCapsTheWindowsOfAllPumps) {
  const size_t limit = 2 * size_t{kStartWindow} + kMinWindow;
  rig_ = std::make_unique<testing::PumpContextRig>(limit);
  Stream& a = Open();
  Stream& b = Open();
  EXPECT_EQ(Window(a), kStartWindow);
  EXPECT_EQ(Window(b), kStartWindow);
  Stream& c = Open();
  EXPECT_EQ(Window(c), kMinWindow) << "halved until it fits";
  EXPECT_EQ(rig_->budget().used(), limit);
  Stream& d = Open();
  EXPECT_EQ(Window(d), kMinWindow) << "the smallest window, outside the spent budget";
  EXPECT_EQ(rig_->budget().used(), limit);

  Download(a, kStartWindow);
  EXPECT_EQ(Window(a), kStartWindow) << "no budget left to grow";

  b.pump.reset();  // gives back what it held
  EXPECT_EQ(rig_->budget().used(), limit - kStartWindow);
  Download(a, kStartWindow);
  EXPECT_EQ(Window(a), 2 * kStartWindow) << "grows once the budget has room";
  EXPECT_EQ(rig_->budget().used(), limit);
  d.pump.reset();
  EXPECT_EQ(rig_->budget().used(), limit) << "it held none of the budget";
  a.pump.reset();
  c.pump.reset();
  EXPECT_EQ(rig_->budget().used(), 0u) << "every pump gives back what it held";
}

TEST_F(PumpTest, AChannelFailureEndsOnlyItsPump) {
  Stream& broken = Open();
  Stream& other = Open();
  broken.server->writes_fail = true;
  WriteAll(broken.peer.get(), "to a broken channel");
  WriteAll(other.peer.get(), "up");
  other.server->to_pump = "down";
  rig_->Spin();
  EXPECT_TRUE(broken.pump->done());
  EXPECT_FALSE(other.pump->done());
  other.pump->Service();
  EXPECT_EQ(other.server->from_pump, "up");
  EXPECT_EQ(ReadAll(other.peer.get()).bytes, "down");
}

TEST_F(PumpTest, AFailedEofEndsOnlyItsPump) {
  Stream& broken = Open();
  Stream& other = Open();
  broken.server->eof_fails = true;
  ASSERT_EQ(::shutdown(broken.peer.get(), SHUT_WR), 0);
  rig_->Spin();
  EXPECT_TRUE(broken.pump->done());
  EXPECT_FALSE(other.pump->done());
}

TEST_F(PumpTest, ASocketFailureEndsOnlyItsPump) {
  Stream& broken = Open();
  Stream& other = Open();
  broken.peer.Reset();  // the client went away: writing to its socket fails (EPIPE)
  broken.server->to_pump = "for nobody";
  broken.pump->Service();
  EXPECT_TRUE(broken.pump->done());
  other.server->to_pump = "still here";
  other.pump->Service();
  EXPECT_FALSE(other.pump->done());
  EXPECT_EQ(ReadAll(other.peer.get()).bytes, "still here");
}

TEST_F(PumpTest, AnswersTheClientOnceOpenAndSendsItsEarlyBytesFirst) {
  std::vector<std::pair<bool, std::string>> calls;
  PumpHooks hooks;
  hooks.on_open = [&](bool ok, const std::string& error) {
    calls.emplace_back(ok, error);
    return std::string("reply;");
  };
  hooks.to_channel = "early;";
  Stream& s = OpenPending(std::move(hooks));
  WriteAll(s.peer.get(), "later;");
  rig_->Spin();
  s.pump->Service();
  EXPECT_TRUE(s.pump->opening());
  EXPECT_TRUE(calls.empty());
  EXPECT_EQ(Unread(s.local), 6) << "read before the channel opened";
  EXPECT_EQ(s.wakeups, 0) << "the socket should be out of poll while the channel opens";

  s.server->open = OpenState::kOpen;
  s.server->to_pump = "data";
  s.pump->Service();
  EXPECT_FALSE(s.pump->opening());
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].first);
  EXPECT_EQ(ReadAll(s.peer.get()).bytes, "reply;data") << "the reply before the server's bytes";
  EXPECT_EQ(s.server->from_pump, "early;later;") << "the early bytes before the socket's";
  s.pump->Service();
  EXPECT_EQ(calls.size(), 1u) << "called once";
}

TEST_F(PumpTest, AnswersTheClientWhenTheChannelFailsToOpen) {
  std::vector<std::pair<bool, std::string>> calls;
  PumpHooks hooks;
  hooks.on_open = [&](bool ok, const std::string& error) {
    calls.emplace_back(ok, error);
    return std::string("refused");
  };
  Stream& s = OpenPending(std::move(hooks));
  s.server->open = OpenState::kFailed;
  s.server->open_error = "connect failed";
  s.pump->Service();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].first);
  EXPECT_EQ(calls[0].second, "connect failed");
  EXPECT_EQ(ReadAll(s.peer.get()).bytes, "refused");
  EXPECT_TRUE(s.pump->done());
  EXPECT_EQ(s.stats->failed, 1u);
  EXPECT_EQ(s.server->reads, 0);
}

}  // namespace
}  // namespace tether::forward
