#include "cli/ssh_include.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tether::cli {
namespace {

const std::string kBlocks = "/home/alice/.local/state/tether/ssh_config";

// The guide's ~/.ssh/config, as users have it.
const std::string kGuide =
    "Host *\n"
    "    ControlMaster auto\n"
    "    ControlPath ~/.ssh/sockets/%r@%h-%p\n"
    "    ControlPersist yes\n"
    "    ServerAliveInterval 60\n"
    "    ServerAliveCountMax 3\n";

TEST(SshInclude, GoesOnTopAndComesOutByteForByte) {
  const std::vector<std::string> files = {kGuide, "", "Host gpu\n  HostName 10.0.0.5",
                                          "Host a\r\n  User b\r\n", "\n\n# only\n"};
  for (const std::string& original : files) {
    auto installed = AddInclude(original, kBlocks);
    ASSERT_TRUE(installed.has_value());
    EXPECT_EQ(*installed, IncludeLines(kBlocks) + original);
    EXPECT_FALSE(AddInclude(*installed, kBlocks).has_value()) << "installed twice";
    auto removed = RemoveInclude(*installed, kBlocks);
    ASSERT_TRUE(removed.has_value());
    EXPECT_EQ(*removed, original);
  }
}

TEST(SshInclude, TheLinesAreACommentAndOneInclude) {
  EXPECT_EQ(IncludeLines(kBlocks).substr(IncludeLines(kBlocks).find('\n') + 1),
            "Include " + kBlocks + "\n");
  EXPECT_EQ(IncludeLines(kBlocks).rfind("# tether", 0), 0u);
  // A path with a space is quoted, as ssh_config wants.
  EXPECT_NE(IncludeLines("/home/a b/ssh_config").find("Include \"/home/a b/ssh_config\"\n"),
            std::string::npos);
}

TEST(SshInclude, RemoveFindsTheIncludeWhereverTheUserMovedIt) {
  std::string moved = kGuide + "Include " + kBlocks + "\n";
  auto removed = RemoveInclude(moved, kBlocks);
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(*removed, kGuide);
  // Another file's Include, or none, is left alone.
  EXPECT_FALSE(RemoveInclude(kGuide + "Include /etc/other\n", kBlocks).has_value());
  EXPECT_FALSE(RemoveInclude(kGuide, kBlocks).has_value());
}

TEST(SshInclude, HostBlocksNameEachPlainHostAndItsMuxSocket) {
  daemon::StateDir state("/run/user/1000/tether");
  std::string text = HostBlocks(state, {"gpu", "login.cluster", "user@host", "a*b"});
  EXPECT_NE(
      text.find("\nHost gpu\n  ControlMaster no\n  ControlPath /run/user/1000/tether/gpu.mux\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("\nHost login.cluster\n"), std::string::npos) << text;
  // Names a Host line would read as patterns or as two names get no block.
  EXPECT_EQ(text.find("user@host"), std::string::npos) << text;
  EXPECT_EQ(text.find("a*b"), std::string::npos) << text;
}

}  // namespace
}  // namespace tether::cli
