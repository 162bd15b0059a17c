#include "ssh/host_key.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace tether::ssh {
namespace {

struct KnownNameCase {
  const char* host;
  uint16_t port;
  const char* want;
};

TEST(KnownHostsName, IsTheHostOnPort22AndBracketedWithThePortOtherwise) {
  const std::vector<KnownNameCase> cases = {
      {"gpu.example.com", 22, "gpu.example.com"},
      {"gpu.example.com", 2222, "[gpu.example.com]:2222"},
      {"10.0.0.5", 22, "10.0.0.5"},
      {"10.0.0.5", 8022, "[10.0.0.5]:8022"},
      {"::1", 22, "::1"},
      {"::1", 2222, "[::1]:2222"},
      {"gpu", 1, "[gpu]:1"},
      {"gpu", 65535, "[gpu]:65535"},
      {"gpu", 222, "[gpu]:222"},
  };
  for (const KnownNameCase& c : cases) {
    EXPECT_EQ(KnownHostsName(c.host, c.port), c.want) << c.host << " " << c.port;
  }
}

TEST(KnownHostsNameFor, IsTheHostKeyAliasVerbatimWhenSetWhateverThePort) {
  config::HostConfig host;
  host.hostname = "10.0.0.5";
  host.port = 2222;
  EXPECT_EQ(KnownHostsNameFor(host), "[10.0.0.5]:2222");
  host.host_key_alias = "gpu-cluster";
  EXPECT_EQ(KnownHostsNameFor(host), "gpu-cluster");
  host.port = 22;
  EXPECT_EQ(KnownHostsNameFor(host), "gpu-cluster");
}

}  // namespace
}  // namespace tether::ssh
