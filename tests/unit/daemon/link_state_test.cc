// The words `status --json` uses for the link's and the lanes' states
// (docs/control-protocol.md): scripts match on them.
#include "daemon/link_state.h"

#include <gtest/gtest.h>

#include "daemon/lane.h"

namespace tether::daemon {
namespace {

TEST(LinkState, IsSaidAsTheControlProtocolDocumentsIt) {
  EXPECT_STREQ(ToString(LinkState::kUp), "up");
  EXPECT_STREQ(ToString(LinkState::kReconnecting), "reconnecting");
  EXPECT_STREQ(ToString(LinkState::kNeedsAuth), "needs-auth");
}

TEST(LaneState, IsSaidAsTheControlProtocolDocumentsIt) {
  EXPECT_STREQ(ToString(Lane::State::kConnecting), "connecting");
  EXPECT_STREQ(ToString(Lane::State::kUp), "up");
  EXPECT_STREQ(ToString(Lane::State::kEnded), "ended");
}

}  // namespace
}  // namespace tether::daemon
