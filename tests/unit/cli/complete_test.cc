#include "cli/complete.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace tether::cli {
namespace {

namespace fs = std::filesystem;

class ConfiguredHostNamesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-complete-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    root_ = dir;
    ssh_dir_ = root_ + "/.ssh";
    fs::create_directories(ssh_dir_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Write(const std::string& path, const std::string& text) {
    const std::string full = root_ + "/" + path;
    fs::create_directories(fs::path(full).parent_path());
    std::ofstream(full) << text;
    return full;
  }

  std::string root_;
  std::string ssh_dir_;
};

TEST_F(ConfiguredHostNamesTest, NamesEveryHostButPatternsInOrderOnce) {
  const std::string config = Write(".ssh/config",
                                   "# Host commented\n"
                                   "Host *\n  ControlMaster auto\n"
                                   "Host gpu gpu2\n  HostName 10.0.0.5\n"
                                   "host *.internal !bastion login\n"
                                   "Host=\"quoted\"\n"
                                   "  HOST   spaced  \n"
                                   "Match host x\n"
                                   "Host gpu\n"
                                   "HostName not-a-host\n");
  EXPECT_EQ(ConfiguredHostNames(config, ssh_dir_),
            (std::vector<std::string>{"gpu", "gpu2", "login", "quoted", "spaced"}));
}

TEST_F(ConfiguredHostNamesTest, FollowsIncludeRelativeToTheSshDirectoryAndAbsolute) {
  Write(".ssh/conf.d/a", "Host from-a\n");
  Write(".ssh/conf.d/b", "Host from-b\n");
  const std::string other = Write("elsewhere/c", "Host from-c\n");
  const std::string config =
      Write(".ssh/config", "Include conf.d/*\nHost top\nInclude " + other + " missing/*\n");
  EXPECT_EQ(ConfiguredHostNames(config, ssh_dir_),
            (std::vector<std::string>{"from-a", "from-b", "top", "from-c"}));
}

TEST_F(ConfiguredHostNamesTest, AnIncludeLoopEndsAndAMissingFileGivesNothing) {
  const std::string config = Write(".ssh/config", "Host looped\nInclude config\n");
  EXPECT_EQ(ConfiguredHostNames(config, ssh_dir_), (std::vector<std::string>{"looped"}));
  EXPECT_TRUE(ConfiguredHostNames(root_ + "/none", ssh_dir_).empty());
}

}  // namespace
}  // namespace tether::cli
