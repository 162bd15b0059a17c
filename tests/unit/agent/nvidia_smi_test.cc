#include "agent/nvidia_smi.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace tether::agent {
namespace {

using testing::ReadFixture;

NvidiaSmiRun Ok(const std::string& fixture) { return {0, ReadFixture(fixture), ""}; }

// Recorded --query-gpu outputs: how many GPUs each holds and what the first one says.
struct GpuCase {
  const char* fixture;
  size_t count;
  Gpu first;
};

class GpuQueryFixtures : public ::testing::TestWithParam<GpuCase> {};

TEST_P(GpuQueryFixtures, ParseToTheRecordedValues) {
  const GpuCase& c = GetParam();
  auto gpus = ParseGpuQuery(ReadFixture(std::string("nvidia_smi/") + c.fixture));
  ASSERT_TRUE(gpus.ok()) << gpus.error().ToString();
  ASSERT_EQ(gpus->size(), c.count);
  EXPECT_EQ(gpus->front(), c.first);
  for (size_t i = 0; i < gpus->size(); ++i) EXPECT_EQ((*gpus)[i].index, static_cast<int>(i));
}

INSTANTIATE_TEST_SUITE_P(Recorded, GpuQueryFixtures,
                         ::testing::Values(GpuCase{"a100_80gb_x8.gpus.csv", 8,
                                                   Gpu{0,
                                                       "GPU-5c7d1e2a-8f3b-4c6d-9e1f-2a3b4c5d6e70",
                                                       "NVIDIA A100-SXM4-80GB",
                                                       98.0,
                                                       78514,
                                                       81920,
                                                       64.0,
                                                       387.21,
                                                       {}}},
                                           GpuCase{"h100_x2.gpus.csv", 2,
                                                   Gpu{0,
                                                       "GPU-9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4",
                                                       "NVIDIA H100 80GB HBM3",
                                                       100.0,
                                                       71234,
                                                       81559,
                                                       58.0,
                                                       612.34,
                                                       {}}},
                                           GpuCase{"rtx4090.gpus.csv", 1,
                                                   Gpu{0,
                                                       "GPU-0d1c2b3a-4958-6776-8594-a3b2c1d0e9f8",
                                                       "NVIDIA GeForce RTX 4090",
                                                       37.0,
                                                       18236,
                                                       24564,
                                                       52.0,
                                                       211.47,
                                                       {}}},
                                           // MIG mode: the whole GPU has no utilization figure.
                                           GpuCase{"a100_mig.gpus.csv", 2,
                                                   Gpu{0,
                                                       "GPU-3e4f5a6b-7c8d-9e0f-1a2b-3c4d5e6f7a8b",
                                                       "NVIDIA A100-SXM4-40GB",
                                                       std::nullopt,
                                                       13690,
                                                       40960,
                                                       35.0,
                                                       88.15,
                                                       {}}},
                                           // A laptop GPU: no utilization, temperature or power.
                                           GpuCase{"not_supported.gpus.csv", 1,
                                                   Gpu{0,
                                                       "GPU-77aa88bb-99cc-00dd-11ee-22ff33aa44bb",
                                                       "NVIDIA GeForce GTX 1650 with Max-Q Design",
                                                       std::nullopt,
                                                       1024,
                                                       4096,
                                                       std::nullopt,
                                                       std::nullopt,
                                                       {}}}));

TEST(NvidiaSmi, ALostGpuKeepsItsRowWithNoValues) {
  auto gpus = ParseGpuQuery(ReadFixture("nvidia_smi/gpu_lost.gpus.csv"));
  ASSERT_TRUE(gpus.ok()) << gpus.error().ToString();
  ASSERT_EQ(gpus->size(), 4u);
  const Gpu& lost = (*gpus)[1];
  EXPECT_EQ(lost.name, "Tesla V100-SXM2-32GB");
  EXPECT_FALSE(lost.utilization_percent);
  EXPECT_FALSE(lost.memory_used_mib);
  EXPECT_FALSE(lost.memory_total_mib);
  EXPECT_FALSE(lost.temperature_celsius);
  EXPECT_FALSE(lost.power_watts);
  const Gpu& unknown = (*gpus)[3];
  EXPECT_FALSE(unknown.utilization_percent);
  EXPECT_EQ(unknown.memory_total_mib, 32768u);
  EXPECT_FALSE(unknown.power_watts);
}

TEST(NvidiaSmi, NamesMayHoldCommas) {
  auto gpus = ParseGpuQuery("0, GPU-1, Acme Tensor, Rev. 2, 5, 10, 20, 30, 40.5\n");
  ASSERT_TRUE(gpus.ok()) << gpus.error().ToString();
  ASSERT_EQ(gpus->size(), 1u);
  EXPECT_EQ((*gpus)[0].name, "Acme Tensor, Rev. 2");
  EXPECT_EQ((*gpus)[0].power_watts, 40.5);
  auto apps = ParseComputeApps("GPU-1, 42, /opt/a, b/python, 100\r\n");
  ASSERT_TRUE(apps.ok()) << apps.error().ToString();
  ASSERT_EQ(apps->size(), 1u);
  EXPECT_EQ((*apps)[0].name, "/opt/a, b/python");
}

struct BadLine {
  const char* text;
  const char* why;
};

class GpuQueryRejects : public ::testing::TestWithParam<BadLine> {};

TEST_P(GpuQueryRejects, MalformedLinesWithTheLineNumber) {
  std::string text = std::string("0, GPU-1, Good, 1, 2, 3, 4, 5\n") + GetParam().text + "\n";
  auto gpus = ParseGpuQuery(text);
  ASSERT_FALSE(gpus.ok()) << GetParam().why;
  EXPECT_NE(gpus.error().message.find("line 2"), std::string::npos) << gpus.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, GpuQueryRejects,
    ::testing::Values(BadLine{"0, GPU-1, Name, 1, 2, 3, 4", "too few fields"},
                      BadLine{"x, GPU-1, Name, 1, 2, 3, 4, 5", "index not a number"},
                      BadLine{"-1, GPU-1, Name, 1, 2, 3, 4, 5", "negative index"},
                      BadLine{"0, GPU-1, Name, 1%, 2, 3, 4, 5", "units left in"},
                      BadLine{"0, GPU-1, Name, 1, -2, 3, 4, 5", "negative memory"},
                      BadLine{"0, GPU-1, Name, 1, 2, 3, 4, nan", "not finite"},
                      BadLine{"0, GPU-1, Name, 1, 2, 3, 4, 1e300", "absurdly large"},
                      BadLine{"0, GPU-1, , 1, 2, 3, 4, 5", "empty name"},
                      BadLine{"garbage", "no commas"}));

TEST(NvidiaSmi, ComputeAppsParseWithAbsentMemory) {
  auto apps = ParseComputeApps(ReadFixture("nvidia_smi/a100_mig.apps.csv"));
  ASSERT_TRUE(apps.ok()) << apps.error().ToString();
  ASSERT_EQ(apps->size(), 2u);
  EXPECT_EQ((*apps)[0], (GpuProcess{"GPU-3e4f5a6b-7c8d-9e0f-1a2b-3c4d5e6f7a8b", 55120, "python",
                                    std::nullopt, std::nullopt, ""}));
}

TEST(NvidiaSmi, NoProcessesIsAnEmptyList) {
  for (const char* text : {"", "\n", "No running processes found\n"}) {
    auto apps = ParseComputeApps(text);
    ASSERT_TRUE(apps.ok()) << text;
    EXPECT_TRUE(apps->empty()) << text;
  }
  EXPECT_FALSE(ParseComputeApps("GPU-1, notapid, python, 10\n").ok());
  EXPECT_FALSE(ParseComputeApps("GPU-1, 0, python, 10\n").ok());
}

TEST(NvidiaSmi, ProcessesAreAttachedToTheirGpu) {
  GpuReport r =
      InterpretNvidiaSmi(Ok("nvidia_smi/h100_x2.gpus.csv"), Ok("nvidia_smi/h100_x2.apps.csv"));
  ASSERT_EQ(r.state, GpuState::kOk);
  EXPECT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.gpus.size(), 2u);
  ASSERT_EQ(r.gpus[0].processes.size(), 1u);
  EXPECT_EQ(r.gpus[0].processes[0].pid, 81234);
  EXPECT_EQ(r.gpus[0].processes[0].used_memory_mib, 70604u);
  ASSERT_EQ(r.gpus[1].processes.size(), 2u);
  EXPECT_EQ(r.gpus[1].processes[1].name, "/opt/vllm/bin/vllm");
  EXPECT_TRUE(r.unmatched_processes.empty());
}

TEST(NvidiaSmi, EightA100sWithFourBusy) {
  GpuReport r = InterpretNvidiaSmi(Ok("nvidia_smi/a100_80gb_x8.gpus.csv"),
                                   Ok("nvidia_smi/a100_80gb_x8.apps.csv"));
  ASSERT_EQ(r.state, GpuState::kOk);
  ASSERT_EQ(r.gpus.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(r.gpus[i].processes.size(), i < 4 ? 1u : 0u) << "GPU " << i;
  }
  EXPECT_EQ(r.gpus[7].memory_used_mib, 4u);
}

TEST(NvidiaSmi, AProcessInAnotherPidNamespaceKeepsItsPlaceholderName) {
  GpuReport r = InterpretNvidiaSmi(Ok("nvidia_smi/not_supported.gpus.csv"),
                                   Ok("nvidia_smi/not_supported.apps.csv"));
  ASSERT_EQ(r.state, GpuState::kOk);
  ASSERT_EQ(r.gpus[0].processes.size(), 1u);
  EXPECT_EQ(r.gpus[0].processes[0].name, "[Not Found]");
  EXPECT_EQ(r.gpus[0].processes[0].used_memory_mib, 1019u);
}

TEST(NvidiaSmi, ProcessesOnAnUnknownGpuAreKeptApart) {
  GpuReport r =
      InterpretNvidiaSmi(Ok("nvidia_smi/rtx4090.gpus.csv"),
                         {0, "MIG-0a1b2c3d-0000-1111-2222-333344445555, 7, python, 512\n", ""});
  ASSERT_EQ(r.state, GpuState::kOk);
  EXPECT_TRUE(r.gpus[0].processes.empty());
  ASSERT_EQ(r.unmatched_processes.size(), 1u);
  EXPECT_EQ(r.unmatched_processes[0].pid, 7);
}

TEST(NvidiaSmi, NoDevicesIsAStateNotAnError) {
  // nvidia-smi exits 6 and says so on stdout.
  GpuReport r = InterpretNvidiaSmi({6, ReadFixture("nvidia_smi/no_devices.txt"), ""}, {});
  EXPECT_EQ(r.state, GpuState::kNoDevices);
  EXPECT_TRUE(r.error.empty());
  EXPECT_TRUE(r.gpus.empty());
  // An empty answer with success means the same.
  EXPECT_EQ(InterpretNvidiaSmi(Ok("nvidia_smi/empty.txt"), {}).state, GpuState::kNoDevices);
}

TEST(NvidiaSmi, DriverFailuresReportNvidiaSmisOwnFirstLine) {
  struct Case {
    const char* fixture;
    int exit_code;
    const char* expected;
  };
  for (const Case& c :
       {Case{"nvidia_smi/driver_failed.txt", 9,
             "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make "
             "sure that the latest NVIDIA driver is installed and running. (exit status 9)"},
        Case{"nvidia_smi/version_mismatch.txt", 18,
             "Failed to initialize NVML: Driver/library version mismatch (exit status 18)"}}) {
    GpuReport r = InterpretNvidiaSmi({c.exit_code, ReadFixture(c.fixture), ""}, {});
    EXPECT_EQ(r.state, GpuState::kError) << c.fixture;
    EXPECT_EQ(r.error, c.expected);
    EXPECT_TRUE(r.gpus.empty());
  }
  // Silence on stdout: the message comes from stderr.
  GpuReport r = InterpretNvidiaSmi({255, "", "\nUnable to determine the device handle\n"}, {});
  EXPECT_EQ(r.error, "Unable to determine the device handle (exit status 255)");
}

TEST(NvidiaSmi, UnparsableSuccessIsAnError) {
  GpuReport r = InterpretNvidiaSmi({0, "this is not csv\n", ""}, {});
  EXPECT_EQ(r.state, GpuState::kError);
  EXPECT_NE(r.error.find("line 1"), std::string::npos) << r.error;
}

TEST(NvidiaSmi, AFailedProcessQueryStillReportsTheGpus) {
  GpuReport r =
      InterpretNvidiaSmi(Ok("nvidia_smi/rtx4090.gpus.csv"), {2, "", "Insufficient Permissions\n"});
  EXPECT_EQ(r.state, GpuState::kOk);
  ASSERT_EQ(r.gpus.size(), 1u);
  EXPECT_EQ(r.error, "process list: Insufficient Permissions (exit status 2)");
}

}  // namespace
}  // namespace tether::agent
