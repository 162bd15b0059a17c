// The words `status --json` uses for a forward's kind and state: scripts match on them.
#include "forward/forward.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tether::forward
