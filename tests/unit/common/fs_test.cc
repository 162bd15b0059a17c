#include "common/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
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

std::string Slurp(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return "<missing>";
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

size_t Entries(const std::string& dir) {
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator(dir);
       it != std::filesystem::directory_iterator(); ++it)
    ++n;
  return n;
}

TEST_F(FsTest, AnAtomicWriteMakesItsParentsAndHasTheModeWhateverTheUmask) {
  const mode_t old = ::umask(0);
  std::string failed;
  const std::string file = root_ + "/no/such/dirs/record.json";
  EXPECT_EQ(WriteFileAtomically(file, "{\"a\":1}\n", 0600, &failed), 0) << failed;
  ::umask(old);
  EXPECT_EQ(Slurp(file), "{\"a\":1}\n");
  EXPECT_EQ(ModeOf(file), 0600u);
  EXPECT_EQ(ModeOf(root_ + "/no"), 0700u);
  EXPECT_EQ(Entries(root_ + "/no/such/dirs"), 1u) << "a temporary file was left";
}

TEST_F(FsTest, AnAtomicWriteReplacesTheFileAndASymlinkWithoutFollowingIt) {
  std::string failed;
  const std::string file = root_ + "/f";
  ASSERT_EQ(WriteFileAtomically(file, "old", 0644, &failed), 0);
  ASSERT_EQ(WriteFileAtomically(file, "new", 0644, &failed), 0);
  EXPECT_EQ(Slurp(file), "new");
  EXPECT_EQ(ModeOf(file), 0644u);
  const std::string target = root_ + "/target";
  ASSERT_EQ(WriteFileAtomically(target, "kept", 0600, &failed), 0);
  const std::string link = root_ + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  ASSERT_EQ(WriteFileAtomically(link, "mine", 0600, &failed), 0);
  EXPECT_EQ(Slurp(target), "kept") << "the write went through the link";
  EXPECT_EQ(Slurp(link), "mine");
}

TEST_F(FsTest, AFailedAtomicWriteSaysWhatFailedAndLeavesNothing) {
  const std::string blocker = root_ + "/file";
  std::string failed;
  ASSERT_EQ(WriteFileAtomically(blocker, "x", 0600, &failed), 0);
  // A parent that is a file.
  EXPECT_EQ(WriteFileAtomically(blocker + "/sub/record", "y", 0600, &failed), ENOTDIR);
  EXPECT_EQ(failed, blocker + "/sub");
  // A directory where the file should be: the rename fails, the temporary file goes.
  ASSERT_EQ(::mkdir((root_ + "/dir").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((root_ + "/dir/record").c_str(), 0700), 0);
  EXPECT_NE(WriteFileAtomically(root_ + "/dir/record", "z", 0600, &failed), 0);
  EXPECT_EQ(failed, root_ + "/dir/record");
  EXPECT_EQ(Entries(root_ + "/dir"), 1u) << "a temporary file was left";
}

TEST_F(FsTest, AFileIsReadWholeAndOneTooBigOrMissingIsItsErrno) {
  // Larger than one read, and with every byte value, NULs included.
  std::string data;
  for (int i = 0; i < 300000; ++i) data += static_cast<char>(i * 7 % 256);
  std::string failed;
  ASSERT_EQ(WriteFileAtomically(root_ + "/blob", data, 0600, &failed), 0);
  std::string read;
  EXPECT_EQ(ReadFile(root_ + "/blob", &read, data.size()), 0);
  EXPECT_TRUE(read == data) << read.size() << " bytes of " << data.size();
  EXPECT_EQ(ReadFile(root_ + "/blob", &read, data.size() - 1), EFBIG);
  EXPECT_TRUE(read.empty());
  EXPECT_EQ(ReadFile(root_ + "/none", &read, 100), ENOENT);
  // A file without a size, read to its end.
  EXPECT_EQ(ReadFile("/proc/self/cmdline", &read, 1 << 20), 0);
  EXPECT_FALSE(read.empty());
}

}  // namespace
}  // namespace tether
