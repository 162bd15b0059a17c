#include "common/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace tether {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tether-fs-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 0777 : 0;
  }
  std::string root_;
};

TEST_F(FsTest, MakesEveryMissingLevelPrivateAndLeavesExistingOnesAlone) {
  ASSERT_EQ(::chmod(root_.c_str(), 0755), 0);
  std::string failed = "untouched";
  EXPECT_EQ(MakeDirs(root_ + "/a/b/c", &failed), 0);
  EXPECT_EQ(failed, "untouched");
  for (const char* dir : {"/a", "/a/b", "/a/b/c"}) EXPECT_EQ(ModeOf(root_ + dir), 0700u) << dir;
  EXPECT_EQ(ModeOf(root_), 0755u) << "an existing directory's mode changed";
  EXPECT_EQ(MakeDirs(root_ + "/a/b/c", &failed), 0) << "made twice";
}

TEST_F(FsTest, ParentDirsStopAboveTheFile) {
  std::string failed;
  EXPECT_EQ(MakeParentDirs(root_ + "/x/y/known_hosts", &failed), 0);
  EXPECT_EQ(ModeOf(root_ + "/x/y"), 0700u);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/x/y/known_hosts"));
  EXPECT_EQ(MakeParentDirs("known_hosts", &failed), 0);  // a bare name: nothing to make
  EXPECT_EQ(MakeParentDirs("/known_hosts", &failed), 0);
}

TEST_F(FsTest, AFailureNamesTheDirectoryAndItsErrno) {
  // A file where a directory should be.
  std::string file = root_ + "/plain";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  std::string failed;
  EXPECT_EQ(MakeDirs(file + "/below/deeper", &failed), ENOTDIR);
  EXPECT_EQ(failed, file + "/below");
}

}  // namespace
}  // namespace tether
