// Where the agent's socket goes by default, and the directories it refuses.
#include "agent/runtime_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

namespace tether::agent {
namespace {

using testing::TempDir;

unsigned ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class RuntimeDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::mkdir((tmp_ / "xdg").c_str(), 0700), 0);
    ASSERT_EQ(::mkdir((tmp_ / "run").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((tmp_ / "home").c_str(), 0755), 0);
    in_.xdg_runtime_dir = tmp_ / "xdg";
    in_.run_user_root = tmp_ / "run";
    in_.home = tmp_ / "home";
    in_.uid = ::geteuid();
  }
  std::string RunUser() { return tmp_ / ("run/" + std::to_string(in_.uid)); }

  TempDir tmp_;
  RuntimeDirInputs in_;
};

TEST_F(RuntimeDirTest, TheOwnersXdgRuntimeDirComesFirst) {
  ASSERT_EQ(::mkdir(RunUser().c_str(), 0700), 0);
  auto dir = ResolveRuntimeDir(in_);
  ASSERT_TRUE(dir.ok()) << dir.error().ToString();
  EXPECT_EQ(*dir, tmp_ / "xdg/tether");
  EXPECT_EQ(ModeOf(*dir), 0700u);
}

TEST_F(RuntimeDirTest, AnXdgRuntimeDirOthersMayEnterIsPassedOver) {
  ASSERT_EQ(::chmod(in_.xdg_runtime_dir.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(RunUser().c_str(), 0700), 0);
  auto dir = ResolveRuntimeDir(in_);
  ASSERT_TRUE(dir.ok()) << dir.error().ToString();
  EXPECT_EQ(*dir, RunUser() + "/tether");
  EXPECT_EQ(ModeOf(*dir), 0700u);
}

TEST_F(RuntimeDirTest, WithoutARuntimeDirTheCacheIsUsedAndMadePrivate) {
  in_.xdg_runtime_dir.clear();
  auto dir = ResolveRuntimeDir(in_);
  ASSERT_TRUE(dir.ok()) << dir.error().ToString();
  EXPECT_EQ(*dir, tmp_ / "home/.cache/tether/run");
  EXPECT_EQ(ModeOf(*dir), 0700u);
  EXPECT_EQ(ModeOf(tmp_ / "home/.cache"), 0700u);
}

TEST_F(RuntimeDirTest, ASymlinkOrAnOpenDirectoryIsRefused) {
  in_.xdg_runtime_dir.clear();
  ASSERT_EQ(::mkdir((tmp_ / "home/.cache").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((tmp_ / "home/.cache/tether").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((tmp_ / "elsewhere").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((tmp_ / "elsewhere").c_str(), (tmp_ / "home/.cache/tether/run").c_str()), 0);
  auto dir = ResolveRuntimeDir(in_);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("symbolic link"), std::string::npos) << dir.error().message;

  ASSERT_EQ(::unlink((tmp_ / "home/.cache/tether/run").c_str()), 0);
  ASSERT_EQ(::mkdir((tmp_ / "home/.cache/tether/run").c_str(), 0750), 0);
  ASSERT_EQ(::chmod((tmp_ / "home/.cache/tether/run").c_str(), 0750), 0);
  dir = ResolveRuntimeDir(in_);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("lets other accounts in"), std::string::npos)
      << dir.error().message;
}

TEST_F(RuntimeDirTest, ADirectoryOfAnotherAccountIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  in_.xdg_runtime_dir.clear();
  ASSERT_EQ(::mkdir(RunUser().c_str(), 0700), 0);
  ASSERT_EQ(::chown(RunUser().c_str(), 65534, 65534), 0);
  // /run/user/UID of someone else is passed over; its tether directory would be refused.
  auto dir = ResolveRuntimeDir(in_);
  ASSERT_TRUE(dir.ok()) << dir.error().ToString();
  EXPECT_EQ(*dir, tmp_ / "home/.cache/tether/run");
  Status theirs = CheckPrivateDir(RunUser(), in_.uid, false);
  ASSERT_FALSE(theirs.ok());
  EXPECT_NE(theirs.error().message.find("belongs to uid 65534"), std::string::npos);
}

TEST_F(RuntimeDirTest, AnExplicitSocketNeedsADirectoryOthersCannotWriteIn) {
  EXPECT_TRUE(CheckSocketParent(tmp_ / "home/agent.sock", in_.uid).ok());  // 0755 is fine
  EXPECT_TRUE(CheckSocketParent(tmp_ / "new/dir/agent.sock", in_.uid).ok());
  EXPECT_EQ(ModeOf(tmp_ / "new/dir"), 0700u);
  ASSERT_EQ(::chmod((tmp_ / "home").c_str(), 01777), 0);  // like /tmp
  Status open = CheckSocketParent(tmp_ / "home/agent.sock", in_.uid);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.error().hint.find("chmod 700"), std::string::npos) << open.error().hint;
}

}  // namespace
}  // namespace tether::agent
