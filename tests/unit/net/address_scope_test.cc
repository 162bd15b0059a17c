#include "net/address_scope.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tether::net {
namespace {

TEST(AddressScope, NamesEachRangeAtItsEdges) {
  struct Case {
    const char* address;
    AddressScope scope;
  };
  const std::vector<Case> cases = {
      {"127.0.0.1", AddressScope::kLoopback},
      {"127.255.255.254", AddressScope::kLoopback},
      {"::1", AddressScope::kLoopback},
      {"::ffff:127.0.0.1", AddressScope::kLoopback},  // mapped: as its IPv4 address
      {"169.254.169.254", AddressScope::kLinkLocal},  // cloud metadata
      {"fe80::1", AddressScope::kLinkLocal},
      {"febf::1", AddressScope::kLinkLocal},
      {"10.0.0.1", AddressScope::kPrivate},
      {"172.16.0.1", AddressScope::kPrivate},
      {"172.31.255.255", AddressScope::kPrivate},
      {"192.168.1.1", AddressScope::kPrivate},
      {"100.64.0.1", AddressScope::kPrivate},  // carrier-grade NAT, Tailscale
      {"fd12:3456::1", AddressScope::kPrivate},
      {"::ffff:10.1.2.3", AddressScope::kPrivate},
      {"172.15.255.255", AddressScope::kPublic},
      {"172.32.0.0", AddressScope::kPublic},
      {"100.128.0.1", AddressScope::kPublic},
      {"169.253.0.1", AddressScope::kPublic},
      {"151.101.0.223", AddressScope::kPublic},
      {"2a04:4e42::223", AddressScope::kPublic},
      {"0.0.0.0", AddressScope::kOther},
      {"::", AddressScope::kOther},
      {"224.0.0.1", AddressScope::kOther},
      {"255.255.255.255", AddressScope::kOther},
      {"ff02::1", AddressScope::kOther},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ScopeOfLiteral(c.address), c.scope) << c.address;
  }
  // A name is placed only by resolving it.
  EXPECT_EQ(ScopeOfLiteral("localhost"), std::nullopt);
  EXPECT_EQ(ScopeOfLiteral("pypi.org"), std::nullopt);
}

TEST(AddressScope, EachReachOpensWhatItSays) {
  using S = AddressScope;
  for (S s : {S::kLoopback, S::kLinkLocal, S::kPrivate, S::kPublic, S::kOther}) {
    EXPECT_EQ(Allows(Reach::kPublic, s), s == S::kPublic);
    EXPECT_EQ(Allows(Reach::kPrivate, s), s == S::kPublic || s == S::kPrivate);
    EXPECT_EQ(Allows(Reach::kAll, s), s != S::kOther);  // never 0.0.0.0 or multicast
  }
  for (const char* name : {"public", "private", "all"}) {
    auto reach = ParseReach(name);
    ASSERT_TRUE(reach.has_value()) << name;
    EXPECT_STREQ(ReachName(*reach), name);
  }
  EXPECT_FALSE(ParseReach("everything").has_value());
  EXPECT_FALSE(ParseReach("").has_value());
}

}  // namespace
}  // namespace tether::net
