// The server's socket table, as the owner check reads it: recorded lines of
// /proc/net/tcp and tcp6 (little-endian words, as x86 and arm64 print them, and
// big-endian), and which uid holds the socket a forwarded-tcpip open names.
#include "forward/socket_table.h"

#include <gtest/gtest.h>

namespace tether::forward {
namespace {

// A proxy on 127.0.0.1:10808 (0x2A38) with clients from ports 50000 (0xC350, uid 1000)
// and 50001 (0xC351, uid 1001), one in time-wait from 50002, and the listener itself.
constexpr char kTcp[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
    "   0: 0100007F:2A38 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000  "
    "      0 31337 1 0000000000000000 100 0 0 10 0\n"
    "   1: 0100007F:C350 0100007F:2A38 01 00000000:00000000 00:00000000 00000000  1000  "
    "      0 40001 1 0000000000000000 20 4 30 10 -1\n"
    "   2: 0100007F:C351 0100007F:2A38 01 00000000:00000000 00:00000000 00000000  1001  "
    "      0 40002 1 0000000000000000 20 4 30 10 -1\n"
    "   3: 0100007F:C352 0100007F:2A38 06 00000000:00000000 03:000011F2 00000000     0  "
    "      0 0 3 0000000000000000\n"
    "   4: 0100007F:2A38 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0  "
    "      0 40003 1 0000000000000000 20 4 30 10 -1\n";

TEST(SocketTableTest, ParsesEveryLineAndSkipsTheHeader) {
  auto table = ParseSocketTable(kTcp);
  ASSERT_EQ(table.size(), 5u);
  EXPECT_EQ(table[1].local_address, "0100007F");
  EXPECT_EQ(table[1].local_port, 50000);
  EXPECT_EQ(table[1].remote_port, 10808);
  EXPECT_EQ(table[1].state, 1);
  EXPECT_EQ(table[1].uid, 1000u);
  EXPECT_EQ(table[1].inode, 40001u);
  EXPECT_EQ(table[0].state, 0x0A);
}

TEST(SocketTableTest, TheClientsSocketNamesItsAccount) {
  auto table = ParseSocketTable(kTcp);
  EXPECT_EQ(OwnerOfConnection(table, "127.0.0.1", 50000, 10808), 1000u);
  EXPECT_EQ(OwnerOfConnection(table, "127.0.0.1", 50001, 10808), 1001u);
}

TEST(SocketTableTest, NoLiveSocketIsNoAnswer) {
  auto table = ParseSocketTable(kTcp);
  // Time-wait: no process, printed as uid 0 (root): never taken for an answer.
  EXPECT_EQ(OwnerOfConnection(table, "127.0.0.1", 50002, 10808), std::nullopt);
  // Gone, another listener, another origin address.
  EXPECT_EQ(OwnerOfConnection(table, "127.0.0.1", 50003, 10808), std::nullopt);
  EXPECT_EQ(OwnerOfConnection(table, "127.0.0.1", 50000, 10809), std::nullopt);
  EXPECT_EQ(OwnerOfConnection(table, "127.0.0.2", 50000, 10808), std::nullopt);
  EXPECT_EQ(OwnerOfConnection(table, "not an address", 50000, 10808), std::nullopt);
}

TEST(SocketTableTest, TheListenersAccountIsThatOfItsListeningSocket) {
  auto table = ParseSocketTable(kTcp);
  EXPECT_EQ(ListenerOf(table, 10808), 1000u);
  EXPECT_EQ(ListenerOf(table, 50000), std::nullopt);  // a client's port, not a listener
  EXPECT_EQ(ListenerOf(table, 10809), std::nullopt);
}

TEST(SocketTableTest, ABigEndianServerPrintsTheAddressTheOtherWayRound) {
  auto table = ParseSocketTable(
      "   1: 7F000001:C350 7F000001:2A38 01 00000000:00000000 00:00000000 00000000  1000  "
      "      0 40001 1 0000000000000000 20 4 30 10 -1\n");
  EXPECT_EQ(OwnerOfConnection(table, "127.0.0.1", 50000, 10808), 1000u);
}

TEST(SocketTableTest, Tcp6HoldsIPv6AndMappedIPv4Clients) {
  // ::1 port 50000 to [::1]:10808, uid 1000; ::ffff:127.0.0.1 port 50001 to a dual-stack
  // listener, uid 1001 (little-endian words).
  auto table = ParseSocketTable(
      "  sl  local_address                         remote_address                        st "
      "tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 00000000000000000000000001000000:C350 00000000000000000000000001000000:2A38 01 "
      "00000000:00000000 00:00000000 00000000  1000        0 50001 1 0000000000000000 20 4 0 "
      "10 -1\n"
      "   1: 0000000000000000FFFF00000100007F:C351 0000000000000000FFFF00000100007F:2A38 01 "
      "00000000:00000000 00:00000000 00000000  1001        0 50002 1 0000000000000000 20 4 0 "
      "10 -1\n");
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(OwnerOfConnection(table, "::1", 50000, 10808), 1000u);
  EXPECT_EQ(OwnerOfConnection(table, "127.0.0.1", 50001, 10808), 1001u);
  EXPECT_EQ(OwnerOfConnection(table, "127.0.0.1", 50000, 10808), std::nullopt);
}

TEST(SocketTableTest, GarbageLinesAreSkipped) {
  auto table = ParseSocketTable(
      "\n"
      "garbage\n"
      "   1: 0100007F:C350 0100007F:2A38 01\n"                       // too few fields
      "   2: 0100007F:ZZZZ 0100007F:2A38 01 0:0 0:0 0 1000 0 4 1\n"  // bad port
      "   3: 0100007:C350 0100007F:2A38 01 0:0 0:0 0 1000 0 4 1\n"   // short address
      "   4: 0100007F:C350 0100007F:2A38 01 0:0 0:0 0 -5 0 4 1\n"    // bad uid
      "   5: 0100007F:C350 0100007F:2A38 01 0:0 0:0 0 1000 0 4 1");  // no newline: fine
  ASSERT_EQ(table.size(), 1u);
  EXPECT_EQ(table[0].uid, 1000u);
}

TEST(SocketTableTest, PortsAreFourUpperCaseHexDigits) {
  EXPECT_EQ(PortHex(0), "0000");
  EXPECT_EQ(PortHex(80), "0050");
  EXPECT_EQ(PortHex(10808), "2A38");
  EXPECT_EQ(PortHex(65535), "FFFF");
}

}  // namespace
}  // namespace tether::forward
