// RunAgent's paths that end before serving: option checks and --print-token.
#include "agent/run.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <utility>

#include "test_util.h"

namespace tether::agent {
namespace {

using testing::ReadPath;
using testing::TempDir;

// RunAgent(o) with its stderr: exit 2 alone could be any usage error.
std::pair<int, std::string> RunForUsage(const AgentOptions& o) {
  ::testing::internal::CaptureStderr();
  int code = RunAgent(o, "0.1.0");
  return {code, ::testing::internal::GetCapturedStderr()};
}

TEST(RunAgent, LeaseHoursWithoutACommandIsAUsageError) {
  AgentOptions o;
  o.lease_hours = 2;
  auto [code, err] = RunForUsage(o);
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("--lease-hours needs --lease-command"), std::string::npos) << err;
}

TEST(RunAgent, LeaseHoursMustBePositiveAndAtMostAMonth) {
  for (double hours : {0.0, -1.0, 721.0}) {
    AgentOptions o;
    o.lease_command = "true";
    o.lease_hours = hours;
    auto [code, err] = RunForUsage(o);
    EXPECT_EQ(code, 2) << hours;
    EXPECT_NE(err.find("--lease-hours must be more than 0 and at most 720"), std::string::npos)
        << hours << ": " << err;
  }
}

TEST(RunAgent, ABadListenAddressIsAUsageError) {
  AgentOptions o;
  o.listen = "::1:8080";
  auto [code, err] = RunForUsage(o);
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("tether-agent: listen:"), std::string::npos) << err;
  EXPECT_NE(err.find("::1"), std::string::npos) << err;
}

TEST(RunAgent, PrintTokenCreatesThenPrintsTheSameToken) {
  TempDir dir;
  AgentOptions o;
  o.print_token = true;
  o.token_file = dir / "sub/agent-token";
  ::testing::internal::CaptureStdout();
  ASSERT_EQ(RunAgent(o, "0.1.0"), 0);
  const std::string first = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(first, ReadPath(o.token_file));
  EXPECT_EQ(first.size(), 65u);  // 64 hex digits and a newline
  ::testing::internal::CaptureStdout();
  ASSERT_EQ(RunAgent(o, "0.1.0"), 0);
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), first);
}

TEST(RunAgent, AnUnusableTokenFileIsAFailure) {
  TempDir dir;
  testing::WriteFile(dir / "agent-token", "not a token\n");
  ::chmod((dir / "agent-token").c_str(), 0600);
  AgentOptions o;
  o.print_token = true;
  o.token_file = dir / "agent-token";
  EXPECT_EQ(RunAgent(o, "0.1.0"), 1);
}

}  // namespace
}  // namespace tether::agent
