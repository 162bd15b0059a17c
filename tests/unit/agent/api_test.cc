#include "agent/api.h"

#include <gtest/gtest.h>

#include "sample_status.h"

namespace tether::agent {
namespace {

using std::chrono::milliseconds;
using testing::SampleStatus;

struct ExtendCase {
  std::optional<std::string_view> query;
  std::string_view body;
  std::optional<milliseconds> expected;  // nullopt: refused
};

class ExtendRequests : public ::testing::TestWithParam<ExtendCase> {};

TEST_P(ExtendRequests, ParseHoursFromQueryOrJson) {
  const ExtendCase& c = GetParam();
  auto got = ParseExtendRequest(c.query, c.body);
  ASSERT_EQ(got.ok(), c.expected.has_value())
      << "query=" << c.query.value_or("(none)") << " body=" << c.body;
  if (got.ok()) {
    EXPECT_EQ(*got, *c.expected);
  } else {
    EXPECT_FALSE(got.error().message.empty());
  }
}

constexpr milliseconds kHour{3600 * 1000};

INSTANTIATE_TEST_SUITE_P(
    Table, ExtendRequests,
    ::testing::Values(
        ExtendCase{std::nullopt, R"({"hours": 2})", 2 * kHour},
        ExtendCase{std::nullopt, R"({"hours": 0.5})", kHour / 2},
        ExtendCase{std::nullopt, R"( {"hours":1, "note":"x"} )", kHour},
        ExtendCase{"2", "", 2 * kHour}, ExtendCase{"1.25", "", milliseconds(4500 * 1000)},
        ExtendCase{"3", R"({"hours": 99})", 3 * kHour},  // the query wins
        ExtendCase{"720", "", 720 * kHour}, ExtendCase{std::nullopt, "", std::nullopt},
        ExtendCase{std::nullopt, "{}", std::nullopt}, ExtendCase{std::nullopt, "[2]", std::nullopt},
        ExtendCase{std::nullopt, R"({"hours": "2"})", std::nullopt},
        ExtendCase{std::nullopt, R"({"hours": 0})", std::nullopt},
        ExtendCase{std::nullopt, R"({"hours": -1})", std::nullopt},
        ExtendCase{std::nullopt, R"({"hours": 1e400})", std::nullopt},
        ExtendCase{std::nullopt, R"({"hours": 2)", std::nullopt},
        ExtendCase{std::nullopt, "hours=2", std::nullopt}, ExtendCase{"", "", std::nullopt},
        ExtendCase{"two", "", std::nullopt}, ExtendCase{"nan", "", std::nullopt},
        ExtendCase{"inf", "", std::nullopt}, ExtendCase{"721", "", std::nullopt},
        ExtendCase{"0.0000000001", "", std::nullopt}));

TEST(StatusJson, HasTheDocumentedShape) {
  Json j = StatusToJson(SampleStatus(), "0.1.0");
  EXPECT_EQ(j["api"], kApiVersion);
  EXPECT_EQ(j["agent"]["version"], "0.1.0");
  EXPECT_EQ(j["hostname"], "gpu01");
  EXPECT_EQ(j["time"], "2024-05-01T12:00:00Z");
  EXPECT_DOUBLE_EQ(j["uptime_seconds"].get<double>(), 1234567.89);
  EXPECT_EQ(j["cpu"]["count"], 64);
  EXPECT_DOUBLE_EQ(j["cpu"]["load1"].get<double>(), 12.47);
  EXPECT_EQ(j["cpu"]["tasks"], 2341);
  EXPECT_EQ(j["memory"]["total_bytes"], 1000ull << 20);
  EXPECT_EQ(j["memory"]["used_bytes"], 400ull << 20);  // total - available
  ASSERT_EQ(j["disks"].size(), 2u);
  EXPECT_EQ(j["disks"][0]["used_bytes"], 600ull << 30);  // total - free
  EXPECT_TRUE(j["disks"][0]["error"].is_null());
  EXPECT_TRUE(j["disks"][1]["total_bytes"].is_null());
  EXPECT_EQ(j["disks"][1]["error"], "No such file or directory");

  EXPECT_EQ(j["gpu"]["source"], "nvidia-smi");
  EXPECT_EQ(j["gpu"]["state"], "ok");
  EXPECT_TRUE(j["gpu"]["error"].is_null());
  ASSERT_EQ(j["gpus"].size(), 2u);
  const Json& g0 = j["gpus"][0];
  EXPECT_EQ(g0["index"], 0);
  EXPECT_EQ(g0["uuid"], "GPU-aaaa");
  EXPECT_EQ(g0["name"], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(g0["utilization_percent"], 100.0);
  EXPECT_EQ(g0["memory_used_bytes"], 71234ull << 20);
  EXPECT_EQ(g0["memory_total_bytes"], 81559ull << 20);
  EXPECT_EQ(g0["temperature_celsius"], 58.0);
  EXPECT_EQ(g0["power_watts"], 612.34);
  ASSERT_EQ(g0["processes"].size(), 2u);
  EXPECT_EQ(g0["processes"][0]["pid"], 81234);
  EXPECT_EQ(g0["processes"][0]["name"], "python3");
  EXPECT_EQ(g0["processes"][0]["used_memory_bytes"], 70604ull << 20);
  EXPECT_TRUE(g0["processes"][1]["used_memory_bytes"].is_null());
  EXPECT_EQ(g0["processes"][0]["uid"], 1001);
  EXPECT_EQ(g0["processes"][0]["user"], "ana");
  EXPECT_TRUE(g0["processes"][1]["uid"].is_null());
  EXPECT_TRUE(g0["processes"][1]["user"].is_null());
  EXPECT_TRUE(j["gpus"][1]["utilization_percent"].is_null());  // MIG: null, not 0

  ASSERT_EQ(j["ports"].size(), 2u);
  EXPECT_EQ(j["ports"][0],
            (Json{{"protocol", "tcp"}, {"address", "127.0.0.1"}, {"port", 8080}, {"uid", 1000}}));
  EXPECT_EQ(j["ports"][1]["protocol"], "tcp6");
  EXPECT_EQ(j["tmux"]["available"], true);
  EXPECT_EQ(j["tmux"]["sessions"][0]["name"], "train");
  EXPECT_EQ(j["tmux"]["sessions"][0]["attached"], 1);
  EXPECT_EQ(j["lease"]["enabled"], false);
  EXPECT_EQ(j["errors"], Json::array({"tmux: something odd"}));
}

TEST(StatusJson, AbsentSectionsAreNull) {
  Json j = StatusToJson(SystemStatus{}, "0.1.0");
  EXPECT_TRUE(j["uptime_seconds"].is_null());
  EXPECT_TRUE(j["memory"].is_null());
  EXPECT_TRUE(j["cpu"]["load1"].is_null());
  EXPECT_EQ(j["gpu"]["state"], "absent");
  EXPECT_TRUE(j["gpus"].is_array());
  EXPECT_TRUE(j["gpus"].empty());
}

TEST(StatusJson, AGpuErrorIsReported) {
  SystemStatus s;
  s.gpu.state = GpuState::kError;
  s.gpu.error = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.";
  Json j = StatusToJson(s, "0.1.0");
  EXPECT_EQ(j["gpu"]["state"], "error");
  EXPECT_EQ(j["gpu"]["error"], s.gpu.error);
}

TEST(LeaseJson, ArmedLeaseShowsRemainingAndExpiry) {
  LeaseSnapshot l;
  l.enabled = true;
  l.armed = true;
  l.remaining = milliseconds(5400 * 1000);
  l.expires_at = std::chrono::system_clock::from_time_t(1714570200);
  l.command = "sudo shutdown -h now";
  l.last_exit_code = 0;
  Json j = LeaseToJson(l);
  EXPECT_EQ(j["enabled"], true);
  EXPECT_EQ(j["armed"], true);
  EXPECT_EQ(j["remaining_seconds"], 5400.0);
  EXPECT_EQ(j["expires_at"], "2024-05-01T13:30:00Z");
  EXPECT_EQ(j["command"], "sudo shutdown -h now");
  EXPECT_TRUE(j["command_running_pid"].is_null());
  EXPECT_EQ(j["last_exit_code"], 0);
}

TEST(Json, InvalidUtf8IsReplacedNotThrown) {
  Json j = {{"name", "py\xFFthon"}};
  EXPECT_EQ(DumpJson(j), "{\"name\":\"py\xEF\xBF\xBDthon\"}");
}

TEST(Json, KeysKeepTheirDocumentOrder) {
  std::string text = DumpJson(StatusToJson(SystemStatus{}, "0.1.0"));
  EXPECT_EQ(text.rfind("{\"api\":1,\"agent\":", 0), 0u) << text;
}

}  // namespace
}  // namespace tether::agent
