#include "cli/gpu_table.h"

#include <gtest/gtest.h>

#include <string>

namespace tether::cli {
namespace {

using nlohmann::json;

constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kGiB = 1024 * kMiB;

// One GPU as the agent's /status lists it (docs/agent.md).
json Gpu(int index, json util, json used, json processes = json::array()) {
  return {{"index", index},
          {"uuid", "GPU-" + std::to_string(index)},
          {"name", "NVIDIA H100 80GB HBM3"},
          {"utilization_percent", util},
          {"memory_used_bytes", used},
          {"memory_total_bytes", 80 * kGiB},
          {"temperature_celsius", 41},
          {"power_watts", 70.5},
          {"processes", processes}};
}

json Process(int pid, const std::string& name, json used, json uid, json user) {
  return {{"pid", pid}, {"name", name}, {"gpu_uuid", "GPU-0"}, {"used_memory_bytes", used},
          {"uid", uid}, {"user", user}};
}

// A busy GPU and an idle one, as an agent answers.
json TwoGpuStatus() {
  json busy = Gpu(0, 97, 70 * kGiB,
                  {Process(81301, "/usr/bin/python3", 20 * kGiB, 1001, "ana"),
                   Process(81234, "/home/ben/envs/llm/bin/python", 50 * kGiB, 1002, "ben")});
  return {{"gpu", {{"source", "nvidia-smi"}, {"state", "ok"}, {"error", nullptr}}},
          {"gpus", {busy, Gpu(1, 0, 300 * kMiB)}}};
}

struct FreeCase {
  const char* why;
  json gpu;
  bool free;
};

TEST(GpuIsFree, OnlyWithoutProcessesAndBelowBothThresholds) {
  const json one_process = {Process(7, "python", 1 * kMiB, 0, "root")};
  const FreeCase cases[] = {
      {"idle: the driver's few hundred MiB", Gpu(0, 0, 300 * kMiB), true},
      {"just under 10 %", Gpu(0, 9.9, 0), true},
      {"10 % is busy", Gpu(0, 10, 0), false},
      {"a process, however small", Gpu(0, 0, 1 * kMiB, one_process), false},
      {"memory held without a process we can see (5 % of 80 GiB is 4 GiB)", Gpu(0, 0, 4 * kGiB),
       false},
      {"just under 5 % of memory", Gpu(0, 0, 4 * kGiB - kMiB), true},
      {"no utilization figure (MIG mode)", Gpu(0, nullptr, 0), false},
      {"no memory figure", Gpu(0, 0, nullptr), false},
      {"no total", json{{"utilization_percent", 0}, {"memory_used_bytes", 0}}, false},
      {"not a GPU at all", json("text"), false},
  };
  for (const auto& c : cases) EXPECT_EQ(GpuIsFree(c.gpu), c.free) << c.why;
}

TEST(TopGpuProcess, IsTheOneHoldingMostMemory) {
  const json busy = TwoGpuStatus()["gpus"][0];
  EXPECT_EQ(TopGpuProcess(busy)["pid"], 81234);
  EXPECT_TRUE(TopGpuProcess(Gpu(1, 0, 0)).is_null());
  // Under MIG no process says how much: the first one stands for them.
  const json unknown = Gpu(
      0, nullptr, 0, {Process(5, "a", nullptr, 0, "root"), Process(6, "b", nullptr, 0, "root")});
  EXPECT_EQ(TopGpuProcess(unknown)["pid"], 5);
  // A known figure beats an unknown one wherever it is.
  const json mixed =
      Gpu(0, 50, 0, {Process(5, "a", nullptr, 0, "root"), Process(6, "b", kMiB, 0, "root")});
  EXPECT_EQ(TopGpuProcess(mixed)["pid"], 6);
}

TEST(TopProcessCell, NamesTheCommandItsUserAndHowManyMore) {
  EXPECT_EQ(TopProcessCell(TwoGpuStatus()["gpus"][0]), "python (ben) +1");
  EXPECT_EQ(TopProcessCell(Gpu(0, 0, 0)), "-");
  EXPECT_EQ(TopProcessCell(Gpu(0, 9, 0, {Process(9, "/opt/vllm/bin/vllm", kGiB, 54321, nullptr)})),
            "vllm (uid 54321)");
  // Another PID namespace: nvidia-smi cannot name it and the agent cannot see its owner.
  EXPECT_EQ(TopProcessCell(Gpu(0, 9, 0, {Process(9, "[Not Found]", kGiB, nullptr, nullptr)})),
            "[Not Found]");
}

TEST(GpusEntry, AddsFreeAndTopProcessToEachGpu) {
  json entry = GpusEntry("gpubox", TwoGpuStatus(), false);
  EXPECT_TRUE(GpusEntryAnswered(entry));
  EXPECT_EQ(entry["host"], "gpubox");
  EXPECT_EQ(entry["gpu_state"], "ok");
  EXPECT_TRUE(entry["error"].is_null());
  ASSERT_EQ(entry["gpus"].size(), 2u);
  EXPECT_EQ(entry["gpus"][0]["free"], false);
  EXPECT_EQ(entry["gpus"][0]["top_process"]["user"], "ben");
  EXPECT_EQ(entry["gpus"][1]["free"], true);
  EXPECT_TRUE(entry["gpus"][1]["top_process"].is_null());
  // The agent's own fields pass through.
  EXPECT_EQ(entry["gpus"][0]["processes"].size(), 2u);
  EXPECT_EQ(entry["gpus"][0]["power_watts"], 70.5);

  json free_only = GpusEntry("gpubox", TwoGpuStatus(), true);
  ASSERT_EQ(free_only["gpus"].size(), 1u);
  EXPECT_EQ(free_only["gpus"][0]["index"], 1);
}

TEST(GpusEntry, AnAgentThatDidNotAnswerSaysWhyAndWhatToRun) {
  Result<json> none = MakeError("agent", "no agent installed on cpubox from this laptop",
                                "tether agent install cpubox, then tether up cpubox --agent");
  json entry = GpusEntry("cpubox", none, false);
  EXPECT_FALSE(GpusEntryAnswered(entry));
  EXPECT_TRUE(entry["gpus"].empty());
  EXPECT_EQ(entry["error"], "no agent installed on cpubox from this laptop");
  EXPECT_EQ(entry["hint"], "tether agent install cpubox, then tether up cpubox --agent");
  EXPECT_TRUE(entry["gpu_state"].is_null());
}

TEST(FormatGpus, OneRowPerGpuThenALinePerHostWithoutGpus) {
  Result<json> none = MakeError("agent", "no agent installed on cpubox from this laptop",
                                "tether agent install cpubox, then tether up cpubox --agent");
  json no_smi = {{"gpu", {{"state", "absent"}, {"error", nullptr}}}, {"gpus", json::array()}};
  json entries = {GpusEntry("gpubox", TwoGpuStatus(), false), GpusEntry("cpubox", none, false),
                  GpusEntry("web", no_smi, false), GpusEntryNotUp("far", "reconnecting")};
  const std::string out = FormatGpus(entries, false);
  EXPECT_EQ(out.find("HOST"), 0u) << out;
  EXPECT_NE(out.find("TOP PROCESS"), std::string::npos) << out;
  EXPECT_NE(out.find("70.0 GiB / 80.0 GiB"), std::string::npos) << out;
  EXPECT_NE(out.find("97%"), std::string::npos) << out;
  EXPECT_NE(out.find("41 C"), std::string::npos) << out;
  EXPECT_NE(out.find("python (ben) +1"), std::string::npos) << out;
  // The busy row says no, the idle one yes.
  size_t row0 = out.find("\ngpubox  0");
  size_t row1 = out.find("\ngpubox  1");
  ASSERT_NE(row0, std::string::npos) << out;
  ASSERT_NE(row1, std::string::npos) << out;
  EXPECT_NE(out.substr(row0, row1 - row0).find(" no"), std::string::npos) << out;
  EXPECT_NE(out.substr(row1, out.find('\n', row1 + 1) - row1).find(" yes"), std::string::npos)
      << out;
  EXPECT_NE(out.find("  cpubox: no agent installed on cpubox from this laptop (tether agent "
                     "install cpubox, then tether up cpubox --agent)\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  web: no nvidia-smi on the server"), std::string::npos) << out;
  EXPECT_NE(out.find("  far: far is reconnecting, not asked\n"), std::string::npos) << out;
}

TEST(FormatGpus, OnlyFreeOnesWithFreeAndSaysSoWhenThereIsNone) {
  json entries = {GpusEntry("gpubox", TwoGpuStatus(), true)};
  const std::string out = FormatGpus(entries, true);
  EXPECT_EQ(out.find("\ngpubox  0"), std::string::npos) << out;
  EXPECT_NE(out.find("\ngpubox  1"), std::string::npos) << out;

  json busy = TwoGpuStatus();
  busy["gpus"].erase(1);
  EXPECT_EQ(FormatGpus(json{GpusEntry("gpubox", busy, true)}, true), "no free GPU\n");
}

}  // namespace
}  // namespace tether::cli
