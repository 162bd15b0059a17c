// The collector against fixture /proc files and fake nvidia-smi / tmux programs: the I/O
// around the parsers, including timeouts and the GPU cache.
#include "agent/collector.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test_util.h"

namespace tether::agent {
namespace {

using std::chrono::milliseconds;
using testing::FixturePath;
using testing::ReadPath;
using testing::TempDir;
using testing::WriteFile;

// A shell script standing in for nvidia-smi: it answers each query from a fixture (or
// with the given body) and appends one line per run to `calls`.
std::string FakeNvidiaSmi(const TempDir& dir, const std::string& gpu_body,
                          const std::string& apps_body) {
  const std::string path = dir / "nvidia-smi";
  WriteFile(path, "#!/bin/sh\necho \"$1\" >> '" + (dir / "calls") + "'\ncase \"$1\" in\n" +
                      "  --query-gpu=*) " + gpu_body + " ;;\n" + "  --query-compute-apps=*) " +
                      apps_body + " ;;\n" + "  *) echo unexpected >&2; exit 2 ;;\nesac\n");
  ::chmod(path.c_str(), 0755);
  return path;
}

std::string Cat(const std::string& fixture) { return "cat '" + FixturePath(fixture) + "'"; }

size_t Calls(const TempDir& dir) {
  std::string text = ::access((dir / "calls").c_str(), F_OK) == 0 ? ReadPath(dir / "calls") : "";
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

CollectorConfig FixtureConfig(const TempDir& dir) {
  CollectorConfig c;
  c.proc_root = FixturePath("proc");
  c.passwd_file = FixturePath("passwd");
  c.disk_paths = {dir.path(), dir / "missing"};
  c.nvidia_smi =
      FakeNvidiaSmi(dir, Cat("nvidia_smi/h100_x2.gpus.csv"), Cat("nvidia_smi/h100_x2.apps.csv"));
  c.tmux = dir / "tmux";
  WriteFile(c.tmux, "#!/bin/sh\nprintf 'train\\t3\\t1\\t1714550000\\n'\n");
  ::chmod(c.tmux.c_str(), 0755);
  return c;
}

TEST(Collector, GathersEverySection) {
  TempDir dir;
  Collector collector(FixtureConfig(dir));
  SystemStatus s = collector.Collect();
  EXPECT_TRUE(s.errors.empty()) << s.errors.front();
  EXPECT_FALSE(s.hostname.empty());
  EXPECT_GE(s.cpus, 1);
  ASSERT_TRUE(s.uptime_seconds);
  EXPECT_DOUBLE_EQ(*s.uptime_seconds, 1234567.89);
  ASSERT_TRUE(s.load);
  EXPECT_EQ(s.load->total, 2341);
  ASSERT_TRUE(s.memory);
  EXPECT_EQ(s.memory->total_bytes, 1056462516ull * 1024);
  // 5 IPv4 and 3 IPv6 listeners, sorted by port.
  ASSERT_EQ(s.ports.size(), 8u);
  EXPECT_EQ(s.ports.front().port, 22);
  EXPECT_EQ(s.ports.back().port, 10810);

  ASSERT_EQ(s.disks.size(), 2u);
  EXPECT_TRUE(s.disks[0].total_bytes);
  EXPECT_TRUE(s.disks[0].error.empty());
  EXPECT_FALSE(s.disks[1].total_bytes);
  EXPECT_EQ(s.disks[1].error, "No such file or directory");

  EXPECT_EQ(s.gpu.state, GpuState::kOk);
  ASSERT_EQ(s.gpu.gpus.size(), 2u);
  EXPECT_EQ(s.gpu.gpus[1].processes.size(), 2u);
  // Each process's owner: named from passwd, a uid passwd does not know, and a pid with no
  // status file here (another PID namespace) without one.
  const GpuProcess& named = s.gpu.gpus[0].processes.at(0);
  EXPECT_EQ(named.pid, 81234);
  EXPECT_EQ(named.uid, 1001);
  EXPECT_EQ(named.user, "ana");
  const GpuProcess& unnamed = s.gpu.gpus[1].processes.at(0);
  EXPECT_EQ(unnamed.pid, 81301);
  EXPECT_EQ(unnamed.uid, 54321);
  EXPECT_EQ(unnamed.user, "");
  const GpuProcess& unseen = s.gpu.gpus[1].processes.at(1);
  EXPECT_EQ(unseen.pid, 90417);
  EXPECT_FALSE(unseen.uid.has_value());
  EXPECT_EQ(unseen.user, "");

  EXPECT_TRUE(s.tmux.available);
  ASSERT_EQ(s.tmux.sessions.size(), 1u);
  EXPECT_EQ(s.tmux.sessions[0].name, "train");
}

TEST(Collector, AMachineWithoutNvidiaSmiOrTmuxIsNotAnError) {
  TempDir dir;
  CollectorConfig c = FixtureConfig(dir);
  c.nvidia_smi = dir / "no-nvidia-smi";
  c.tmux = dir / "no-tmux";
  SystemStatus s = Collector(c).Collect();
  EXPECT_EQ(s.gpu.state, GpuState::kAbsent);
  EXPECT_TRUE(s.gpu.error.empty());
  EXPECT_FALSE(s.tmux.available);
  EXPECT_TRUE(s.errors.empty()) << s.errors.front();
}

TEST(Collector, ReportsADriverFailure) {
  TempDir dir;
  CollectorConfig c = FixtureConfig(dir);
  c.nvidia_smi = FakeNvidiaSmi(dir, Cat("nvidia_smi/driver_failed.txt") + "; exit 9", "exit 9");
  SystemStatus s = Collector(c).Collect();
  EXPECT_EQ(s.gpu.state, GpuState::kError);
  EXPECT_EQ(s.gpu.error.rfind("NVIDIA-SMI has failed because it couldn't communicate", 0), 0u)
      << s.gpu.error;
  EXPECT_EQ(Calls(dir), 1u);  // no process query after a failed GPU query
}

TEST(Collector, ReportsNoDevices) {
  TempDir dir;
  CollectorConfig c = FixtureConfig(dir);
  c.nvidia_smi = FakeNvidiaSmi(dir, Cat("nvidia_smi/no_devices.txt") + "; exit 6", "exit 6");
  EXPECT_EQ(Collector(c).Collect().gpu.state, GpuState::kNoDevices);
}

TEST(Collector, CachesTheGpuReportBriefly) {
  TempDir dir;
  CollectorConfig c = FixtureConfig(dir);
  c.gpu_cache_ttl = std::chrono::hours(1);
  Collector cached(c);
  cached.Collect();
  cached.Collect();
  EXPECT_EQ(Calls(dir), 2u);  // one run: the GPU query and the process query

  c.gpu_cache_ttl = milliseconds(0);
  Collector uncached(c);
  uncached.Collect();
  uncached.Collect();
  EXPECT_EQ(Calls(dir), 6u);
}

TEST(Collector, AHungNvidiaSmiTimesOutAndIsNotRetriedAtOnce) {
  TempDir dir;
  CollectorConfig c = FixtureConfig(dir);
  c.nvidia_smi = FakeNvidiaSmi(dir, "sleep 30", "sleep 30");
  c.gpu_timeout = milliseconds(200);
  c.gpu_cache_ttl = milliseconds(0);
  Collector collector(c);
  const auto start = std::chrono::steady_clock::now();
  SystemStatus s = collector.Collect();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(s.gpu.state, GpuState::kError);
  EXPECT_NE(s.gpu.error.find("did not answer within 200 ms"), std::string::npos) << s.gpu.error;
  // The rest of the report is there all the same.
  EXPECT_TRUE(s.memory);
  SystemStatus again = collector.Collect();
  EXPECT_EQ(again.gpu.error, s.gpu.error);
  EXPECT_EQ(Calls(dir), 1u);
}

TEST(Collector, AnUnreadableProcFileIsOneErrorNotAFailure) {
  TempDir dir;
  CollectorConfig c = FixtureConfig(dir);
  c.proc_root = dir / "no-proc";
  SystemStatus s = Collector(c).Collect();
  EXPECT_FALSE(s.memory);
  EXPECT_FALSE(s.load);
  EXPECT_EQ(s.errors.size(), 5u);  // uptime, loadavg, meminfo, net/tcp, net/tcp6
  EXPECT_EQ(s.gpu.state, GpuState::kOk);
}

}  // namespace
}  // namespace tether::agent
