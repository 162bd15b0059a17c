#include "cli/doctor_crash.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace tether::cli {
namespace {

namespace fs = std::filesystem;

config::ForwardSpec Spec(config::ForwardKind kind, const std::string& text) {
  auto spec = config::ParseForwardSpec(kind, text);
  EXPECT_TRUE(spec.ok()) << text;
  return spec.ok() ? *spec : config::ForwardSpec{};
}

daemon::RecordedForward Recorded(const std::string& kind, const std::string& bind, uint16_t port,
                                 const std::string& flag) {
  daemon::RecordedForward r;
  r.kind = kind;
  r.spec = flag.substr(3);
  r.flag = flag;
  r.bind = bind;
  r.port = port;
  return r;
}

TEST(PortsToCheck, OnePlaceOncePerSideWithEverySourceThatAsksForIt) {
  using config::ForwardKind;
  const std::vector<daemon::RecordedForward> recorded = {
      Recorded("local", "", 8000, "-L 8000:localhost:8000"),
      Recorded("remote", "", 9000, "-R 9000:localhost:3000"),
      Recorded("proxy", "127.0.0.1", 10808, "-R 127.0.0.1:10808"),
  };
  const std::vector<config::ForwardSpec> ssh_config = {
      Spec(ForwardKind::kLocal, "localhost:8000:localhost:8000"),  // the loopback, as ""
      Spec(ForwardKind::kDynamic, "1080"),
      Spec(ForwardKind::kRemote, "8000:localhost:8000"),  // the server's 8000, not ours
  };
  const std::vector<config::ForwardSpec> profile = {
      Spec(ForwardKind::kLocal, "127.0.0.1:8000:localhost:8000"),
      Spec(ForwardKind::kDynamic, "0.0.0.0:1080"),  // another address: a place of its own
      Spec(ForwardKind::kLocal, "1080:localhost:22"),
  };
  auto ports = PortsToCheck(recorded, ssh_config, profile);
  struct Want {
    std::string flag;
    bool on_server;
    uint16_t port;
    std::vector<std::string> sources;
  };
  const std::vector<Want> want = {
      {"-L 8000:localhost:8000",
       false,
       8000,
       {"recorded by the daemon", "LocalForward in ssh_config", "config.toml"}},
      {"-R 9000:localhost:3000", true, 9000, {"recorded by the daemon"}},
      {"-R 127.0.0.1:10808", true, 10808, {"recorded by the daemon"}},
      {"-D 1080", false, 1080, {"DynamicForward in ssh_config", "config.toml"}},
      {"-R 8000:localhost:8000", true, 8000, {"RemoteForward in ssh_config"}},
      {"-D 0.0.0.0:1080", false, 1080, {"config.toml"}},
  };
  ASSERT_EQ(ports.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(ports[i].flag, want[i].flag) << i;
    EXPECT_EQ(ports[i].on_server, want[i].on_server) << i;
    EXPECT_EQ(ports[i].port, want[i].port) << i;
    EXPECT_EQ(ports[i].sources, want[i].sources) << i;
  }
}

TEST(PortsToCheck, UnixSocketsMatchByPath) {
  daemon::RecordedForward r;
  r.kind = "local";
  r.spec = "/tmp/a.sock:/run/b.sock";
  r.flag = "-L /tmp/a.sock:/run/b.sock";
  r.path = "/tmp/a.sock";
  auto ports =
      PortsToCheck({r}, {Spec(config::ForwardKind::kLocal, "/tmp/a.sock:/run/c.sock")}, {});
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0].path, "/tmp/a.sock");
  EXPECT_EQ(ports[0].sources.size(), 2u);
}

struct TailCase {
  const char* name;
  std::string text;
  size_t count;
  bool mid_line;
  std::vector<std::string> want;
};

TEST(LastLines, TheEndOfTheLogMadeSafeToPrint) {
  const std::string long_line(kLogLineMax + 50, 'x');
  const std::vector<TailCase> cases = {
      {"empty", "", 10, false, {}},
      {"fewer than asked", "a\nb\n", 10, false, {"a", "b"}},
      {"the last ones", "1\n2\n3\n4\n", 2, false, {"3", "4"}},
      {"no final newline", "1\n2", 5, false, {"1", "2"}},
      {"a cut first line dropped", "tail of a line\nwhole\n", 5, true, {"whole"}},
      {"nothing whole", "no newline at all", 5, true, {}},
      {"escape sequences shown", "\x1b[2Jboom\r\n", 5, false, {"?[2Jboom?"}},
      {"bytes past ASCII shown", "caf\xc3\xa9 \xff\n", 5, false, {"caf?? ?"}},
      {"tabs kept", "a\tb\n", 5, false, {"a\tb"}},
      {"a long line cut", long_line + "\n", 5, false, {std::string(kLogLineMax, 'x') + "..."}},
  };
  for (const auto& c : cases) EXPECT_EQ(LastLines(c.text, c.count, c.mid_line), c.want) << c.name;
}

class FindDeadDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-dead-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  std::string dir_;
};

TEST_F(FindDeadDaemonTest, NothingLeftIsNoDeadDaemon) {
  daemon::StateDir state(dir_);
  Write("gpu.log", "a log alone says nothing about a death\n");
  EXPECT_FALSE(FindDeadDaemon(state, "gpu").has_value());
}

TEST_F(FindDeadDaemonTest, ARecordGivesThePidTheStartAndItsForwards) {
  daemon::StateDir state(dir_);
  daemon::ForwardsRecord r;
  r.host = "gpu";
  r.pid = 31337;
  r.started = 1700000000;
  r.updated = 1700000100;
  r.forwards = {Recorded("local", "", 8000, "-L 8000:localhost:8000")};
  ASSERT_TRUE(daemon::WriteForwardsRecord(state.ForwardsPath("gpu"), r).ok());
  auto dead = FindDeadDaemon(state, "gpu");
  ASSERT_TRUE(dead.has_value());
  EXPECT_EQ(dead->pid, 31337);
  EXPECT_EQ(dead->started, 1700000000);
  EXPECT_GE(dead->last_seen, 1700000100);
  ASSERT_TRUE(dead->record.has_value());
  EXPECT_EQ(dead->record->forwards.size(), 1u);
  EXPECT_TRUE(dead->record_error.empty());
  EXPECT_EQ(dead->log_path, state.LogPath("gpu"));
}

TEST_F(FindDeadDaemonTest, AStalePidFileAloneIsADeathWithThatPid) {
  daemon::StateDir state(dir_);
  Write("gpu.pid", "4321\n");
  auto dead = FindDeadDaemon(state, "gpu");
  ASSERT_TRUE(dead.has_value());
  EXPECT_EQ(dead->pid, 4321);
  EXPECT_EQ(dead->started, 0);
  EXPECT_FALSE(dead->record.has_value());
}

TEST_F(FindDeadDaemonTest, ADamagedRecordIsSaidNotThrown) {
  daemon::StateDir state(dir_);
  Write("gpu.forwards", "{\"version\":1,\"pid\":");
  auto dead = FindDeadDaemon(state, "gpu");
  ASSERT_TRUE(dead.has_value());
  EXPECT_FALSE(dead->record.has_value());
  EXPECT_EQ(dead->record_error.rfind("unreadable record", 0), 0u) << dead->record_error;
}

TEST_F(FindDeadDaemonTest, ALiveDaemonHoldingItsLockIsNotDead) {
  daemon::StateDir state(dir_);
  daemon::PidLock lock;
  auto got = daemon::PidLock::TryAcquire(state.PidPath("gpu"), &lock);
  ASSERT_TRUE(got.ok() && got->acquired);
  ASSERT_TRUE(lock.WritePid(::getpid()).ok());
  daemon::ForwardsRecord r;
  r.pid = ::getpid();
  ASSERT_TRUE(daemon::WriteForwardsRecord(state.ForwardsPath("gpu"), r).ok());
  EXPECT_FALSE(FindDeadDaemon(state, "gpu").has_value());
}

}  // namespace
}  // namespace tether::cli
