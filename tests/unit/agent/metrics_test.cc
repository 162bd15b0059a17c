#include "agent/metrics.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <map>
#include <set>

#include "common/text.h"
#include "sample_status.h"

namespace tether::agent {
namespace {

using testing::SampleStatus;

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || std::isdigit(static_cast<unsigned char>(c)); }

// Takes a metric or label name off the front of `s`; empty when there is none.
std::string_view TakeName(std::string_view& s) {
  size_t n = 0;
  if (!s.empty() && IsNameStart(s[0])) {
    while (n < s.size() && IsNameChar(s[n])) ++n;
  }
  std::string_view name = s.substr(0, n);
  s.remove_prefix(n);
  return name;
}

// `name{label="value",...} number` with the format's escapes; returns the metric name,
// empty when the line is not a sample.
std::string SampleName(std::string_view s) {
  std::string_view name = TakeName(s);
  if (name.empty()) return {};
  if (!s.empty() && s[0] == '{') {
    s.remove_prefix(1);
    while (true) {
      if (TakeName(s).empty() || s.substr(0, 2) != "=\"") return {};
      s.remove_prefix(2);
      while (!s.empty() && s[0] != '"') {
        if (s[0] == '\n') return {};
        if (s[0] == '\\') {
          if (s.size() < 2 || (s[1] != '\\' && s[1] != '"' && s[1] != 'n')) return {};
          s.remove_prefix(1);
        }
        s.remove_prefix(1);
      }
      if (s.empty()) return {};
      s.remove_prefix(1);  // closing quote
      if (!s.empty() && s[0] == ',') {
        s.remove_prefix(1);
        continue;
      }
      if (s.empty() || s[0] != '}') return {};
      s.remove_prefix(1);
      break;
    }
  }
  if (s.empty() || s[0] != ' ') return {};
  s.remove_prefix(1);
  if (s == "NaN" || s == "+Inf" || s == "-Inf") return std::string(name);
  if (!ParseDouble(s)) return {};
  return std::string(name);
}

// Checks the exposition format's rules on a whole document: every line is a HELP, a TYPE
// or a sample; each family has one HELP and one TYPE before its samples and appears in
// one block; names and labels are well formed; the document ends with a newline.
void ExpectValidExposition(const std::string& text) {
  ASSERT_FALSE(text.empty());
  ASSERT_EQ(text.back(), '\n');
  std::set<std::string> finished;
  std::string current;
  bool saw_help = false;
  bool saw_type = false;
  for (std::string_view line : SplitLines(text)) {
    if (line.substr(0, 7) == "# HELP ") {
      std::string_view rest = line.substr(7);
      std::string name(TakeName(rest));
      ASSERT_FALSE(name.empty()) << line;
      ASSERT_TRUE(rest.size() > 1 && rest[0] == ' ') << "HELP without text: " << line;
      ASSERT_FALSE(finished.count(name)) << "family split in two: " << name;
      if (!current.empty()) finished.insert(current);
      current = name;
      saw_help = true;
      saw_type = false;
    } else if (line.substr(0, 7) == "# TYPE ") {
      std::string_view rest = line.substr(7);
      std::string name(TakeName(rest));
      ASSERT_EQ(name, current) << line;
      ASSERT_TRUE(rest == " gauge" || rest == " counter") << line;
      ASSERT_TRUE(saw_help) << line;
      saw_type = true;
    } else {
      std::string name = SampleName(line);
      ASSERT_FALSE(name.empty()) << "not exposition format: '" << line << "'";
      ASSERT_EQ(name, current) << "sample outside its family: " << line;
      ASSERT_TRUE(saw_type) << line;
    }
  }
}

TEST(Metrics, TheFormatCheckerItselfKnowsBrokenLines) {
  EXPECT_EQ(SampleName("up 1"), "up");
  EXPECT_EQ(SampleName(R"(up{a="x\"y",b="\\"} 1.5)"), "up");
  EXPECT_EQ(SampleName("up NaN"), "up");
  for (const char* bad : {"up", "up 1.5W", "1up 1", R"(up{a="x} 1)", R"(up{a="x"}1)",
                          R"(up{a="x\q"} 1)", R"(up{a=x} 1)", R"(up{="x"} 1)", "up{} 1"}) {
    EXPECT_EQ(SampleName(bad), "") << bad;
  }
}

TEST(Metrics, ASampleStatusIsValidExposition) {
  ExpectValidExposition(RenderMetrics(SampleStatus(), "0.1.0"));
}

TEST(Metrics, AnEmptyStatusIsValidExposition) {
  ExpectValidExposition(RenderMetrics(SystemStatus{}, "0.1.0"));
}

TEST(Metrics, CarriesTheNumbers) {
  std::string text = RenderMetrics(SampleStatus(), "0.1.0");
  for (const char* line : {
           "tether_agent_info{version=\"0.1.0\",api=\"1\"} 1",
           "tether_node_load1 12.47",
           "tether_node_cpus 64",
           "tether_node_memory_total_bytes 1048576000",
           "tether_node_disk_available_bytes{path=\"/home/ana\"} 322122547200",
           "tether_gpu_state{state=\"ok\"} 1",
           "tether_gpu_state{state=\"error\"} 0",
           "tether_gpu_info{gpu=\"0\",uuid=\"GPU-aaaa\",name=\"NVIDIA H100 80GB HBM3\"} 1",
           "tether_gpu_utilization_percent{gpu=\"0\",uuid=\"GPU-aaaa\"} 100",
           "tether_gpu_memory_used_bytes{gpu=\"0\",uuid=\"GPU-aaaa\"} 74694262784",
           "tether_gpu_power_watts{gpu=\"0\",uuid=\"GPU-aaaa\"} 612.34",
           "tether_gpu_processes{gpu=\"0\",uuid=\"GPU-aaaa\"} 2",
           "tether_gpu_process_memory_used_bytes{gpu=\"0\",uuid=\"GPU-aaaa\",pid=\"81234\","
           "process=\"python3\"} 74033659904",
           "tether_listening_port{protocol=\"tcp6\",address=\"::\",port=\"22\"} 1",
           "tether_tmux_sessions 1",
           "tether_tmux_session_attached_clients{session=\"train\"} 1",
           "tether_lease_enabled 0",
           "tether_agent_collect_errors 1",
       }) {
    EXPECT_NE(text.find(std::string(line) + "\n"), std::string::npos) << line << "\n" << text;
  }
}

TEST(Metrics, LeavesOutWhatTheMachineCannotGive) {
  std::string text = RenderMetrics(SampleStatus(), "0.1.0");
  // GPU 1 is in MIG mode: no utilization sample, rather than a misleading 0.
  EXPECT_EQ(text.find("tether_gpu_utilization_percent{gpu=\"1\""), std::string::npos);
  EXPECT_NE(text.find("tether_gpu_memory_total_bytes{gpu=\"1\""), std::string::npos);
  // The unreadable disk and the process without a memory figure are left out too.
  EXPECT_EQ(text.find("/data/missing"), std::string::npos);
  EXPECT_EQ(text.find("pid=\"81235\""), std::string::npos);
  // No lease: only "enabled 0".
  EXPECT_EQ(text.find("tether_lease_remaining_seconds"), std::string::npos);
}

TEST(Metrics, ALeaseShowsItsCountdown) {
  SystemStatus s = SampleStatus();
  s.lease.enabled = true;
  s.lease.armed = true;
  s.lease.remaining = std::chrono::milliseconds(7200500);
  s.lease.expirations = 2;
  std::string text = RenderMetrics(s, "0.1.0");
  ExpectValidExposition(text);
  EXPECT_NE(text.find("tether_lease_remaining_seconds 7200.5\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE tether_lease_expirations_total counter\n"
                      "tether_lease_expirations_total 2\n"),
            std::string::npos);
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
  EXPECT_EQ(EscapeLabelValue("a\"b"), "a\\\"b");
  EXPECT_EQ(EscapeLabelValue("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeLabelValue("a\nb"), "a\\nb");
  EXPECT_EQ(EscapeLabelValue("a\xFF"), "a\xEF\xBF\xBD");
}

TEST(Metrics, ValuesAreFormattedAsTheFormatSpellsThem) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(81920), "81920");
  EXPECT_EQ(FormatSampleValue(1056462516.0 * 1024), "1081817616384");
  EXPECT_EQ(FormatSampleValue(61.52), "61.52");
  EXPECT_EQ(FormatSampleValue(-2.5), "-2.5");
  EXPECT_EQ(FormatSampleValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatSampleValue(HUGE_VAL), "+Inf");
  EXPECT_EQ(FormatSampleValue(-HUGE_VAL), "-Inf");
  EXPECT_EQ(FormatSampleValue(1e300), "1e+300");
}

}  // namespace
}  // namespace tether::agent
