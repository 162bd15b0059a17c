#include "cli/format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace tether::cli {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;
constexpr uint64_t kTiB = 1024 * kGiB;

struct BytesCase {
  uint64_t bytes;
  const char* want;
};

// Three significant digits from 1 KiB up, as in the header's "12.0 MiB" and "3.21 GiB".
// The header's "1.5 KiB" disagrees with those two; the code prints 1536 bytes as
// "1.50 KiB", which agrees with them.
TEST(HumanBytes, FormatsSizesForPeople) {
  const std::vector<BytesCase> cases = {
      {0, "0 B"},
      {1, "1 B"},
      {512, "512 B"},
      {1023, "1023 B"},
      {1024, "1.00 KiB"},
      {1536, "1.50 KiB"},
      {10 * kKiB, "10.0 KiB"},
      {100 * kKiB, "100 KiB"},
      {1023 * kKiB, "1023 KiB"},
      {kMiB, "1.00 MiB"},
      {10 * kMiB, "10.0 MiB"},
      {12 * kMiB, "12.0 MiB"},
      {3'446'711'255, "3.21 GiB"},  // 3.21 GiB
      {kTiB, "1.00 TiB"},
      {2048 * kTiB, "2048 TiB"},  // no unit above TiB
      {std::numeric_limits<uint64_t>::max(), "16777216 TiB"},
  };
  for (const BytesCase& c : cases) {
    EXPECT_EQ(HumanBytes(c.bytes), c.want) << c.bytes << " bytes";
  }
}

// The number of decimals is picked before rounding, so values just below a boundary
// round up to a fourth digit or to 1024 of a unit that has a bigger neighbour.
TEST(HumanBytes, RoundsUpIntoTheNextUnitAndKeepsThreeDigits) {
  const std::vector<BytesCase> cases = {
      {kMiB - 1, "1.00 MiB"},
      {kGiB - 1, "1.00 GiB"},
      {10 * kKiB - 1, "10.0 KiB"},
      {100 * kKiB - 1, "100 KiB"},
  };
  for (const BytesCase& c : cases) {
    EXPECT_EQ(HumanBytes(c.bytes), c.want) << c.bytes << " bytes";
  }
}

struct DurationCase {
  int64_t seconds;
  const char* want;
};

TEST(ListenPort, IsWhatFollowsTheLastColonWhenItIsAPort) {
  EXPECT_EQ(ListenPort("127.0.0.1:8000"), 8000);
  EXPECT_EQ(ListenPort("server localhost:9000"), 9000);
  EXPECT_EQ(ListenPort("[::1]:10808"), 10808);
  EXPECT_EQ(ListenPort("/tmp/fwd.sock"), 0);
  EXPECT_EQ(ListenPort("127.0.0.1:"), 0);
  EXPECT_EQ(ListenPort("127.0.0.1:0"), 0);
  EXPECT_EQ(ListenPort("127.0.0.1:65536"), 0);
  EXPECT_EQ(ListenPort(""), 0);
}

TEST(HumanDuration, FormatsDurationsForPeople) {
  const std::vector<DurationCase> cases = {
      {0, "0s"},        {45, "45s"},      {59, "59s"},
      {60, "1m00s"},    {192, "3m12s"},   {3599, "59m59s"},
      {3600, "1h00m"},  {18180, "5h03m"}, {86399, "23h59m"},
      {86400, "1d00h"}, {90000, "1d01h"}, {187200, "2d04h"},
      {-1, "0s"},       {-90000, "0s"},   {std::numeric_limits<int64_t>::min(), "0s"},
  };
  for (const DurationCase& c : cases) {
    EXPECT_EQ(HumanDuration(c.seconds), c.want) << c.seconds << " s";
  }
}

TEST(FormatTable, AlignsColumnsTwoSpacesApart) {
  const std::string got = FormatTable({
      {"HOST", "STATE", "PID"},
      {"gpu", "up", "4242"},
      {"build-server", "connecting", "7"},
  });
  EXPECT_EQ(got,
            "HOST          STATE       PID\n"
            "gpu           up          4242\n"
            "build-server  connecting  7\n");
}

TEST(FormatTable, TrimsTrailingSpacesFromEveryLine) {
  const std::string got = FormatTable({
      {"HOST", "RTT", "NOTE"},
      {"gpu", "12ms", ""},
      {"a-much-longer-host", "", ""},
      {"x"},
  });
  EXPECT_EQ(got,
            "HOST                RTT   NOTE\n"
            "gpu                 12ms\n"
            "a-much-longer-host\n"
            "x\n");
  std::istringstream lines(got);
  std::string line;
  for (int i = 0; i < 100 && std::getline(lines, line); ++i) {
    EXPECT_TRUE(line.empty() || line.back() != ' ') << "\"" << line << "\"";
  }
}

TEST(FormatTable, PrintsNothingForNoRows) { EXPECT_EQ(FormatTable({}), ""); }

TEST(FormatTable, PrintsAHeaderAlone) {
  EXPECT_EQ(FormatTable({{"KIND", "LISTEN", "TARGET"}}), "KIND  LISTEN  TARGET\n");
}

}  // namespace
}  // namespace tether::cli

namespace tether::cli {
namespace {

TEST(HumanRate, ShowsBitsPerSecondForPeople) {
  EXPECT_EQ(HumanRate(0), "-");
  EXPECT_EQ(HumanRate(10), "1 kbit/s");
  EXPECT_EQ(HumanRate(100'000), "800 kbit/s");
  EXPECT_EQ(HumanRate(12'500'000), "100.0 Mbit/s");
  EXPECT_EQ(HumanRate(300'000'000), "2.40 Gbit/s");
}

TEST(ForwardFlagLine, WritesEachKindAsSshWould) {
  EXPECT_EQ(ForwardFlagLine(
                {{"kind", "local"}, {"listen", "127.0.0.1:8000"}, {"target", "localhost:8000"}}),
            "-L 127.0.0.1:8000 -> localhost:8000");
  EXPECT_EQ(
      ForwardFlagLine(
          {{"kind", "remote"}, {"listen", "server localhost:9000"}, {"target", "127.0.0.1:9000"}}),
      "-R server localhost:9000 -> 127.0.0.1:9000");
  EXPECT_EQ(
      ForwardFlagLine({{"kind", "dynamic"}, {"listen", "127.0.0.1:1080"}, {"target", "socks"}}),
      "-D 127.0.0.1:1080 (socks)");
  EXPECT_EQ(
      ForwardFlagLine(
          {{"kind", "proxy"}, {"listen", "server 127.0.0.1:10808"}, {"target", "laptop: direct"}}),
      "--proxy server 127.0.0.1:10808 -> laptop: direct");
}

}  // namespace
}  // namespace tether::cli

namespace tether::cli {
namespace {

TEST(ControlPathNote, SaysWhetherTheUsersControlPathRidesTether) {
  EXPECT_EQ(ControlPathNote(nlohmann::json{{"host", "gpu"}, {"control_path", nullptr}}), "");
  EXPECT_EQ(ControlPathNote(nlohmann::json{
                {"control_path", {{"path", "/s/a@gpu-22"}, {"state", "serving"}, {"detail", ""}}}}),
            "ssh's ControlPath /s/a@gpu-22 rides this connection");
  EXPECT_EQ(ControlPathNote(nlohmann::json{{"control_path",
                                            {{"path", "/s/a@gpu-22"},
                                             {"state", "held"},
                                             {"detail", "is held by an OpenSSH master, pid 7"}}}}),
            "ControlPath /s/a@gpu-22 is held by an OpenSSH master, pid 7");
}

}  // namespace
}  // namespace tether::cli
