#include "forward/pump_set.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "forward/fake_channel.h"
#include "forward/pump_rig.h"

namespace tether::forward {
namespace {

using testing::MakeSocketPair;
using testing::ReadAll;
using testing::WriteAll;
using OpenState = ssh::ChannelIo::OpenState;

// The client's end of a stream and the server of its fake channel.
struct Stream {
  UniqueFd peer;
  std::shared_ptr<FakeChannel::Server> server = std::make_shared<FakeChannel::Server>();
  std::shared_ptr<ForwardStats> stats = std::make_shared<ForwardStats>();
  int opened = 0;  // on_open calls
};

class PumpSetTest : public ::testing::Test {
 protected:
  Stream& Start(OpenState open = OpenState::kOpen) {
    auto stream = std::make_unique<Stream>();
    Stream* s = stream.get();
    s->server->open = open;
    auto pair = MakeSocketPair();
    s->peer = std::move(pair.peer);
    PumpHooks hooks;
    hooks.on_open = [s](bool, const std::string&) {
      ++s->opened;
      return std::string("open;");
    };
    pumps_.StartWith(
        [s](ssh::ChannelObserver* observer) {
          return std::make_unique<FakeChannel>(s->server, observer);
        },
        std::move(pair.local), s->stats, "test", std::move(hooks));
    streams_.push_back(std::move(stream));
    return *s;
  }

  testing::PumpContextRig rig_;
  std::vector<std::unique_ptr<Stream>> streams_;  // outlives the pumps, which call its hooks
  PumpSet pumps_{rig_.context()};
};

TEST_F(PumpSetTest, PollsAnOpeningChannelOnEveryPass) {
  Stream& s = Start(OpenState::kPending);
  pumps_.ServiceDirty();
  EXPECT_EQ(s.opened, 0);
  // No callback says that a channel opened: the next pass finds out by asking.
  s.server->open = OpenState::kOpen;
  pumps_.ServiceDirty();
  EXPECT_EQ(s.opened, 1);
  EXPECT_EQ(ReadAll(s.peer.get()).bytes, "open;");
}

TEST_F(PumpSetTest, RunsAPumpWhenItsChannelReportsActivity) {
  Stream& quiet = Start();
  Stream& busy = Start();
  ASSERT_EQ(ReadAll(busy.peer.get()).bytes, "open;");
  ASSERT_EQ(ReadAll(quiet.peer.get()).bytes, "open;");
  busy.server->to_pump = "news";
  quiet.server->to_pump = "unannounced";
  pumps_.ServiceDirty();
  EXPECT_EQ(ReadAll(busy.peer.get()).bytes, "") << "run with nothing reported";

  ASSERT_NE(busy.server->observer, nullptr);
  busy.server->observer->OnChannelActivity();
  busy.server->observer->OnChannelActivity();  // marked once
  pumps_.ServiceDirty();
  EXPECT_EQ(ReadAll(busy.peer.get()).bytes, "news");
  EXPECT_EQ(ReadAll(quiet.peer.get()).bytes, "") << "only the pump whose channel had news";

  pumps_.MarkAllDirty();
  pumps_.ServiceDirty();
  EXPECT_EQ(ReadAll(quiet.peer.get()).bytes, "unannounced");
}

TEST_F(PumpSetTest, RetriesAPumpBlockedOnTheWindowOnEveryPass) {
  Stream& s = Start();
  s.server->remote_window = 0;
  WriteAll(s.peer.get(), "upload");
  rig_.Spin();
  pumps_.ServiceDirty();
  EXPECT_EQ(s.server->from_pump, "");
  // libssh reports a window adjustment to no callback: the next pass retries it.
  s.server->remote_window = 1000;
  pumps_.ServiceDirty();
  EXPECT_EQ(s.server->from_pump, "upload");
}

TEST_F(PumpSetTest, DropsAPumpThatEndedAndClosesItsChannel) {
  Stream& broken = Start();
  Stream& other = Start();
  broken.server->writes_fail = true;
  WriteAll(broken.peer.get(), "x");
  rig_.Spin();  // its socket's event runs it
  EXPECT_EQ(pumps_.size(), 1u);
  EXPECT_TRUE(broken.server->destroyed);
  EXPECT_EQ(broken.stats->live, 0u);
  EXPECT_TRUE(ReadAll(broken.peer.get()).eof) << "its socket closed";
  EXPECT_FALSE(other.server->destroyed);
}

TEST_F(PumpSetTest, ClearEndsEveryPump) {
  Stream& a = Start();
  Stream& b = Start(OpenState::kPending);
  EXPECT_EQ(pumps_.size(), 2u);
  pumps_.Clear();
  EXPECT_EQ(pumps_.size(), 0u);
  EXPECT_TRUE(a.server->destroyed);
  EXPECT_TRUE(b.server->destroyed);
  pumps_.ServiceDirty();  // nothing left to run, not even the opening one
  EXPECT_EQ(b.opened, 0);
}

}  // namespace
}  // namespace tether::forward
