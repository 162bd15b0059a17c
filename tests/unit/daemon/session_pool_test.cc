// The session pool's placement rules without a server: which connection takes the next
// session, and what a refusal teaches of a connection's MaxSessions. The pool itself, over
// a real sshd, is in tests/e2e (MaxSessionsTest, the exec soak).
#include "daemon/session_pool.h"

#include <gtest/gtest.h>

namespace tether::daemon {
namespace {

TEST(SessionPlacement, TheFirstConnectionWithRoomTakesTheSession) {
  struct Case {
    const char* what;
    std::vector<SessionRoom> connections;
    std::optional<size_t> avoid;
    std::optional<size_t> want;
  };
  const Case cases[] = {
      {"no connection", {}, std::nullopt, std::nullopt},
      {"a limit not known yet: room", {{std::nullopt, 40}}, std::nullopt, 0},
      {"the main one first", {{10, 3}, {10, 0}}, std::nullopt, 0},
      {"the main one full", {{10, 10}, {10, 2}}, std::nullopt, 1},
      {"every one full", {{10, 10}, {4, 4}}, std::nullopt, std::nullopt},
      {"below a limit learned low", {{10, 10}, {4, 3}}, std::nullopt, 1},
      {"the one that refused is skipped", {{10, 3}, {10, 3}}, 0, 1},
      {"skipped even when it alone has room", {{10, 3}, {10, 10}}, 0, std::nullopt},
      {"an unknown one after full ones", {{10, 10}, {10, 10}, {std::nullopt, 0}}, std::nullopt, 2},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FirstWithRoom(c.connections, c.avoid), c.want) << c.what;
  }
}

TEST(SessionPlacement, ARefusalTeachesTheLargestCountSeen) {
  struct Case {
    const char* what;
    size_t confirmed;
    size_t asked;
    std::optional<size_t> known;
    std::optional<size_t> want;
  };
  const Case cases[] = {
      {"nothing else open: a policy, not MaxSessions", 0, 0, std::nullopt, std::nullopt},
      {"ten open: the limit is ten", 10, 10, std::nullopt, 10},
      {"opens in flight count for asking, not for the limit", 3, 8, std::nullopt, 3},
      {"only opens in flight: at least one", 0, 2, std::nullopt, 1},
      {"closes sshd has not read: never below what was learned", 6, 6, 10, 10},
      {"more seen than known: the limit grows", 12, 12, 10, 12},
      {"a known limit with nothing open is still MaxSessions", 0, 0, 10, 10},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(LimitAfterRefusal(c.confirmed, c.asked, c.known), c.want) << c.what;
  }
}

}  // namespace
}  // namespace tether::daemon
