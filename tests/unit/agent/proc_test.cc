#include "agent/proc.h"

#include <gtest/gtest.h>

#include "common/text.h"

#include "test_util.h"

namespace tether::agent {
namespace {

using testing::ReadFixture;

TEST(ProcLoadAvg, ParsesTheRecordedFile) {
  auto load = ParseLoadAvg(ReadFixture("proc/loadavg"));
  ASSERT_TRUE(load.ok()) << load.error().ToString();
  EXPECT_EQ(*load, (LoadAvg{12.47, 11.92, 10.35, 17, 2341}));
}

TEST(ProcLoadAvg, RejectsMalformedText) {
  for (const char* text :
       {"", "0.1 0.2\n", "a b c 1/2 3\n", "0.1 0.2 0.3 12 5\n", "0.1 0.2 0.3 x/5 5\n"}) {
    EXPECT_FALSE(ParseLoadAvg(text).ok()) << text;
  }
}

TEST(ProcStatusUid, TakesTheRealUidOfTheRecordedFile) {
  auto uid = ParseStatusUid(ReadFixture("proc/81234/status"));
  ASSERT_TRUE(uid.ok()) << uid.error().ToString();
  EXPECT_EQ(*uid, 1001);
  // Real, effective, saved, filesystem: a setuid program is its caller's.
  auto setuid = ParseStatusUid("Name:\tsu\nUid:\t1000\t0\t0\t0\n");
  ASSERT_TRUE(setuid.ok());
  EXPECT_EQ(*setuid, 1000);
  for (const char* text : {"", "Name:\tx\n", "Uid:\n", "Uid:\tme\t0\t0\t0\n", "Uid:\t-1\n"}) {
    EXPECT_FALSE(ParseStatusUid(text).ok()) << text;
  }
}

TEST(Passwd, TheFixturesAccountsAreNamedByUid) {
  const std::string passwd = ReadFixture("passwd");
  auto name = [&](uint64_t uid) {
    auto e = FindPasswdEntry(passwd, uid);
    return e ? e->name : "?";
  };
  EXPECT_EQ(name(0), "root");
  EXPECT_EQ(name(1001), "ana");
  // 1001 is not a prefix match of 10010, nor is a gid a uid.
  EXPECT_EQ(name(10010), "ben");
  EXPECT_EQ(name(100), "?");
  EXPECT_EQ(name(54321), "?");
}

TEST(ProcUptime, ParsesSecondsSinceBoot) {
  auto up = ParseUptime(ReadFixture("proc/uptime"));
  ASSERT_TRUE(up.ok());
  EXPECT_DOUBLE_EQ(*up, 1234567.89);
  EXPECT_FALSE(ParseUptime("").ok());
  EXPECT_FALSE(ParseUptime("-3 4").ok());
  EXPECT_FALSE(ParseUptime("soon").ok());
}

TEST(ProcMemInfo, ParsesTheRecordedFileInBytes) {
  auto mem = ParseMemInfo(ReadFixture("proc/meminfo"));
  ASSERT_TRUE(mem.ok()) << mem.error().ToString();
  EXPECT_EQ(mem->total_bytes, 1056462516ull * 1024);
  EXPECT_EQ(mem->free_bytes, 412345678ull * 1024);
  EXPECT_EQ(mem->available_bytes, 905123456ull * 1024);
  EXPECT_EQ(mem->swap_total_bytes, 8388604ull * 1024);
  EXPECT_EQ(mem->swap_free_bytes, 8388604ull * 1024);
}

TEST(ProcMemInfo, OldKernelsWithoutMemAvailableGetAnEstimate) {
  auto mem = ParseMemInfo(
      "MemTotal:        1000 kB\nMemFree:          100 kB\nBuffers:           20 kB\n"
      "Cached:            300 kB\n");
  ASSERT_TRUE(mem.ok());
  EXPECT_EQ(mem->available_bytes, 420u * 1024);
  EXPECT_EQ(mem->swap_total_bytes, 0u);
}

TEST(ProcMemInfo, NeedsTotalAndFree) {
  EXPECT_FALSE(ParseMemInfo("").ok());
  EXPECT_FALSE(ParseMemInfo("MemTotal: 1000 kB\n").ok());
  EXPECT_FALSE(ParseMemInfo("MemTotal: lots kB\nMemFree: 3 kB\n").ok());
}

TEST(ProcNetTcp, ListsOnlyListeningSockets) {
  auto ports = ParseProcNetTcp(ReadFixture("proc/net/tcp"), /*ipv6=*/false);
  ASSERT_TRUE(ports.ok()) << ports.error().ToString();
  // Fixtures were recorded on little-endian hosts (see proc.h).
  const std::vector<ListeningPort> expected = {
      {false, "0.0.0.0", 22, 0},         {false, "127.0.0.1", 8080, 1000},
      {false, "127.0.0.1", 10810, 1000}, {false, "127.0.0.53", 53, 102},
      {false, "0.0.0.0", 8000, 1000},
  };
  EXPECT_EQ(*ports, expected);
}

TEST(ProcNetTcp6, DecodesV6AndV4MappedAddresses) {
  auto ports = ParseProcNetTcp(ReadFixture("proc/net/tcp6"), /*ipv6=*/true);
  ASSERT_TRUE(ports.ok()) << ports.error().ToString();
  const std::vector<ListeningPort> expected = {
      {true, "::", 22, 0},
      {true, "::1", 8080, 1000},
      {true, "::ffff:127.0.0.1", 8888, 1000},
  };
  EXPECT_EQ(*ports, expected);
}

TEST(ProcNetTcp, RejectsMalformedRowsWithTheLineNumber) {
  const std::string header = "  sl  local_address rem_address   st tx_queue rx_queue tr\n";
  for (const char* row : {
           "   0: 0100007F:1F90 00000000:0000 0A\n",                                      // short
           "   0: 0100007F 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0\n",  // no port
           "   0: 01007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0\n",
           "   0: 0100007F:FFFFF 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0\n",
           "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 me\n",
       }) {
    auto ports = ParseProcNetTcp(header + row, false);
    ASSERT_FALSE(ports.ok()) << row;
    EXPECT_NE(ports.error().message.find("line 2"), std::string::npos) << ports.error().message;
  }
  // A v4-sized address in tcp6 is wrong too.
  EXPECT_FALSE(
      ParseProcNetTcp(
          "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0\n", true)
          .ok());
}

}  // namespace
}  // namespace tether::agent
