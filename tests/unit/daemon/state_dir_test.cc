#include "daemon/state_dir.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace tether::daemon {
namespace {

namespace fs = std::filesystem;

struct FileNameCase {
  const char* name;
  std::string host;
  const char* want;
};

TEST(FileNameFor, KeepsSafeCharactersAndReplacesTheRest) {
  const std::vector<FileNameCase> cases = {
      {"plain", "gpu", "gpu"},
      {"dots and dashes", "gpu-node.example.com", "gpu-node.example.com"},
      {"underscore", "build_box", "build_box"},
      {"user@host", "alice@gpu", "alice@gpu"},
      {"user@host:port", "alice@gpu:2222", "alice@gpu_2222"},
      {"slashes", "a/b/c", "a_b_c"},
      {"path climbing", "../etc/passwd", "_.._etc_passwd"},
      {"leading dot", ".hidden", "_.hidden"},
      {"dot", ".", "_."},
      {"dot dot", "..", "_.."},
      {"empty", "", "_"},
      {"spaces", "my host", "my_host"},
      {"IPv6 in brackets", "[::1]:22", "___1__22"},
      {"non-ASCII bytes", "h\xc3\xa9llo", "h__llo"},
      {"NUL", std::string("a\0b", 3), "a_b"},
  };
  for (const FileNameCase& c : cases) {
    EXPECT_EQ(FileNameFor(c.host), c.want) << c.name;
  }
}

// Saves the variables StateDir::Open reads and puts them back afterwards.
class EnvGuard {
 public:
  EnvGuard() {
    for (const char* name : kNames) {
      const char* v = ::getenv(name);
      saved_.push_back(v == nullptr ? std::nullopt : std::optional<std::string>(v));
    }
  }
  ~EnvGuard() {
    for (size_t i = 0; i < saved_.size(); ++i) {
      if (saved_[i]) {
        ::setenv(kNames[i], saved_[i]->c_str(), 1);
      } else {
        ::unsetenv(kNames[i]);
      }
    }
  }

 private:
  static constexpr const char* kNames[] = {"TETHER_STATE_DIR", "XDG_RUNTIME_DIR", "HOME"};
  std::vector<std::optional<std::string>> saved_;
};

class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-state-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    root_ = dir;
  }
  void TearDown() override { fs::remove_all(root_); }

  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
  }
  static void Touch(const std::string& path) { std::ofstream(path) << ""; }
  static std::string Slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string root_;
  EnvGuard env_;
};

TEST_F(StateDirTest, UsesTetherStateDirAndCreatesNestedDirectoriesPrivate) {
  const std::string path = root_ + "/a/b/state";
  ASSERT_EQ(::setenv("TETHER_STATE_DIR", path.c_str(), 1), 0);

  auto dir = StateDir::Open();

  ASSERT_TRUE(dir.ok()) << dir.error().ToString();
  EXPECT_EQ(dir->path(), path);
  for (const std::string& d : {root_ + "/a", root_ + "/a/b", path}) {
    EXPECT_TRUE(fs::is_directory(d)) << d;
    EXPECT_EQ(ModeOf(d), 0700u) << d;
  }
}

TEST_F(StateDirTest, TightensAnExistingOpenDirectory) {
  const std::string path = root_ + "/state";
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path.c_str(), 0755), 0);
  ASSERT_EQ(::setenv("TETHER_STATE_DIR", path.c_str(), 1), 0);

  auto dir = StateDir::Open();

  ASSERT_TRUE(dir.ok()) << dir.error().ToString();
  EXPECT_EQ(ModeOf(path), 0700u);
}

struct EnvCase {
  const char* name;
  const char* tether_state_dir;  // relative to the temp root; nullptr: unset
  const char* xdg_runtime_dir;
  const char* home;
  const char* want;  // relative to the temp root
};

TEST_F(StateDirTest, PicksTheDirectoryFromTheEnvironmentInOrder) {
  const std::vector<EnvCase> cases = {
      {"TETHER_STATE_DIR first", "/mine", "/run", "/home", "/mine"},
      {"then XDG_RUNTIME_DIR", nullptr, "/run", "/home", "/run/tether"},
      {"then HOME", nullptr, nullptr, "/home", "/home/.local/state/tether"},
  };
  for (const EnvCase& c : cases) {
    auto set = [&](const char* name, const char* rel) {
      if (rel == nullptr) {
        ::unsetenv(name);
      } else {
        ::setenv(name, (root_ + rel).c_str(), 1);
      }
    };
    set("TETHER_STATE_DIR", c.tether_state_dir);
    set("XDG_RUNTIME_DIR", c.xdg_runtime_dir);
    set("HOME", c.home);

    auto dir = StateDir::Open();

    ASSERT_TRUE(dir.ok()) << c.name << ": " << dir.error().ToString();
    EXPECT_EQ(dir->path(), root_ + c.want) << c.name;
    EXPECT_TRUE(fs::is_directory(root_ + c.want)) << c.name;
  }
}

TEST_F(StateDirTest, RefusesAPathThatIsAFile) {
  const std::string path = root_ + "/file";
  Touch(path);
  ASSERT_EQ(::setenv("TETHER_STATE_DIR", path.c_str(), 1), 0);

  auto dir = StateDir::Open();

  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().step, "state");
  EXPECT_TRUE(fs::is_regular_file(path));
}

TEST_F(StateDirTest, RefusesADirectoryOwnedBySomeoneElse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory away";
  const std::string path = root_ + "/theirs";
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::setenv("TETHER_STATE_DIR", path.c_str(), 1), 0);

  auto dir = StateDir::Open();

  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().step, "state");
  EXPECT_NE(dir.error().hint.find("TETHER_STATE_DIR"), std::string::npos);
  EXPECT_EQ(ModeOf(path), 0755u) << "the mode of someone else's directory changed";
}

TEST_F(StateDirTest, NamesEachFileAfterTheHost) {
  const StateDir dir(root_);
  EXPECT_EQ(dir.SocketPath("alice@gpu:22"), root_ + "/alice@gpu_22.sock");
  EXPECT_EQ(dir.MuxPath("alice@gpu:22"), root_ + "/alice@gpu_22.mux");
  EXPECT_EQ(dir.PidPath("alice@gpu:22"), root_ + "/alice@gpu_22.pid");
  EXPECT_EQ(dir.LogPath("alice@gpu:22"), root_ + "/alice@gpu_22.log");
  EXPECT_EQ(dir.PidPath("../x"), root_ + "/_.._x.pid");
}

TEST_F(StateDirTest, ListsHostsWithAPidFileSorted) {
  const StateDir dir(root_);
  for (const char* name : {"zeta.pid", "alpha.pid", "mid.pid", "sockonly.sock", "logonly.log",
                           "backup.pid.old", ".pid"}) {
    Touch(root_ + "/" + name);
  }
  EXPECT_EQ(dir.Hosts(), (std::vector<std::string>{"alpha", "mid", "zeta"}));
}

TEST_F(StateDirTest, ListsNoHostsForADirectoryThatDoesNotExist) {
  EXPECT_TRUE(StateDir(root_ + "/missing").Hosts().empty());
}

TEST_F(StateDirTest, RemovesTheHostsFilesButKeepsItsLog) {
  const StateDir dir(root_);
  for (const std::string& path :
       {dir.SocketPath("gpu"), dir.MuxPath("gpu"), dir.PidPath("gpu"), dir.LogPath("gpu"),
        dir.PidPath("other"), dir.SocketPath("other")}) {
    Touch(path);
  }

  dir.RemoveFiles("gpu");

  EXPECT_FALSE(fs::exists(dir.SocketPath("gpu")));
  EXPECT_FALSE(fs::exists(dir.MuxPath("gpu")));
  EXPECT_FALSE(fs::exists(dir.PidPath("gpu")));
  EXPECT_TRUE(fs::exists(dir.LogPath("gpu")));
  EXPECT_TRUE(fs::exists(dir.PidPath("other")));
  EXPECT_TRUE(fs::exists(dir.SocketPath("other")));
}

TEST_F(StateDirTest, PidLockIsExclusiveAndNamesItsHolder) {
  const std::string path = root_ + "/gpu.pid";

  PidLock first;
  auto got = PidLock::TryAcquire(path, &first);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_TRUE(got->acquired);
  EXPECT_TRUE(first.held());
  ASSERT_TRUE(first.WritePid(4242).ok());
  EXPECT_EQ(Slurp(path), "4242\n");

  // flock locks belong to the open file description, so a second open in this same
  // process conflicts as another process would.
  PidLock second;
  auto again = PidLock::TryAcquire(path, &second);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_FALSE(again->acquired);
  EXPECT_EQ(again->holder, 4242);
  EXPECT_FALSE(second.held());

  const LiveCheck live = CheckRunning(path);
  EXPECT_TRUE(live.running);
  EXPECT_EQ(live.pid, 4242);

  first.Release();
  EXPECT_FALSE(first.held());
  EXPECT_FALSE(CheckRunning(path).running);

  auto after = PidLock::TryAcquire(path, &second);
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  EXPECT_TRUE(after->acquired);
  EXPECT_TRUE(second.held());
}

TEST_F(StateDirTest, WritePidReplacesTheOldPid) {
  const std::string path = root_ + "/gpu.pid";
  PidLock lock;
  auto got = PidLock::TryAcquire(path, &lock);
  ASSERT_TRUE(got.ok() && got->acquired);
  ASSERT_TRUE(lock.WritePid(1234567).ok());
  ASSERT_TRUE(lock.WritePid(7).ok());
  EXPECT_EQ(Slurp(path), "7\n");
  EXPECT_EQ(CheckRunning(path).pid, 7);
}

TEST_F(StateDirTest, ReportsNoHolderPidBeforeOneIsWritten) {
  const std::string path = root_ + "/gpu.pid";
  PidLock first;
  auto got = PidLock::TryAcquire(path, &first);
  ASSERT_TRUE(got.ok() && got->acquired);

  PidLock second;
  auto again = PidLock::TryAcquire(path, &second);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->acquired);
  EXPECT_EQ(again->holder, 0);
}

TEST_F(StateDirTest, FindsNothingRunningWithoutAPidFile) {
  const LiveCheck live = CheckRunning(root_ + "/nobody.pid");
  EXPECT_FALSE(live.running);
  EXPECT_EQ(live.pid, 0);
}

TEST_F(StateDirTest, ALockDiesWithItsProcess) {
  const std::string path = root_ + "/gpu.pid";
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::alarm(10);  // never outlive a broken test
    PidLock lock;
    auto got = PidLock::TryAcquire(path, &lock);
    char ok = (got.ok() && got->acquired && lock.WritePid(::getpid()).ok()) ? 'y' : 'n';
    [[maybe_unused]] ssize_t n = ::write(ready[1], &ok, 1);
    for (int i = 0; i < 1000; ++i) ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(ok, 'y');

  const LiveCheck live = CheckRunning(path);
  EXPECT_TRUE(live.running);
  EXPECT_EQ(live.pid, child);

  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);

  const LiveCheck dead = CheckRunning(path);
  EXPECT_FALSE(dead.running);
  EXPECT_EQ(dead.pid, child) << "the pid file outlives the daemon; the lock does not";
}

}  // namespace
}  // namespace tether::daemon
