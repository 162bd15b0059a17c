// The words `status --json` uses for a forward's kind and state: scripts match on them.
#include "forward/forward.h"

#include <gtest/gtest.h>

#include "forward/remote_forward.h"
#include "net/connect_pool.h"

namespace tether::forward {
namespace {

TEST(ForwardState, IsSaidAsStatusHasAlwaysSaidIt) {
  EXPECT_STREQ(ToString(ForwardState::kWaitingForLink), "waiting for the link");
  EXPECT_STREQ(ToString(ForwardState::kRequesting), "requesting");
  EXPECT_STREQ(ToString(ForwardState::kListening), "listening");
  EXPECT_STREQ(ToString(ForwardState::kRetrying), "retrying");
  EXPECT_STREQ(ToString(ForwardState::kStopped), "stopped");
}

TEST(ForwardKindName, IsTheControlProtocolsKind) {
  EXPECT_STREQ(ForwardKindName(config::ForwardKind::kLocal), "local");
  EXPECT_STREQ(ForwardKindName(config::ForwardKind::kRemote), "remote");
  EXPECT_STREQ(ForwardKindName(config::ForwardKind::kDynamic), "dynamic");
}

// Forwards the server listens for, made but never given a session.
class RemoteKindsTest : public ::testing::Test {
 protected:
  RemoteKindsTest() : connects_(loop_), pumps_(pump_context_) {
    context_.loop = &loop_;
    context_.pumps = &pumps_;
    context_.requests = &requests_;
    context_.connects = &connects_;
  }

  static config::ForwardSpec Spec(const char* text) {
    auto spec = config::ParseForwardSpec(config::ForwardKind::kRemote, text);
    EXPECT_TRUE(spec.ok()) << text;
    return *spec;
  }

  net::EventLoop loop_;
  net::ConnectPool connects_;
  PumpContext pump_context_;
  PumpSet pumps_;
  ssh::GlobalRequests requests_;
  RemoteForward::Context context_;
};

TEST_F(RemoteKindsTest, TheServerProxyIsKindProxyAndSaysWhereItListens) {
  RemoteForward::ProxySettings settings;
  settings.policy.require_auth = true;
  ServerProxy proxy(Spec("127.0.0.1:10808"), "gpu", context_, settings);
  EXPECT_STREQ(proxy.kind_name(), "proxy");
  EXPECT_EQ(proxy.target_description().rfind("laptop: ", 0), 0u) << proxy.target_description();
  ASSERT_TRUE(proxy.server_proxy().has_value());
  EXPECT_EQ(proxy.server_proxy()->port, 10808);
  EXPECT_FALSE(proxy.server_proxy()->open);
  EXPECT_EQ(proxy.server_proxy()->state, ForwardState::kWaitingForLink);
}

TEST_F(RemoteKindsTest, AReverseDynamicForwardIsARemoteOneThatSpeaksSocks) {
  RemoteForward socks(Spec("1080"), "gpu", context_, RemoteForward::ProxySettings{});
  EXPECT_STREQ(socks.kind_name(), "remote");
  EXPECT_EQ(socks.target_description(), "socks");
  EXPECT_FALSE(socks.server_proxy().has_value());
  EXPECT_FALSE(socks.streams_from_laptop());
}

TEST_F(RemoteKindsTest, ARemoteForwardTakesNoServerChannelUntilTheServerListens) {
  RemoteForward fwd(Spec("9000:localhost:3000"), "gpu", context_, RemoteForward::ProxySettings{});
  EXPECT_EQ(fwd.target_description(), "localhost:3000");
  EXPECT_FALSE(fwd.AcceptsServerChannel("localhost", 9000));
}

}  // namespace
}  // namespace tether::forward
