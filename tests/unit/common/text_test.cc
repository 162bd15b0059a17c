// The text helpers parsers stand on (the agent's, the server's socket table).
#include "common/text.h"

#include <gtest/gtest.h>

namespace tether {
namespace {

TEST(Text, NumbersAreWholeStrings) {
  EXPECT_EQ(ParseInt("42"), 42);
  EXPECT_EQ(ParseInt("-7"), -7);
  EXPECT_FALSE(ParseInt("42 "));
  EXPECT_FALSE(ParseInt(""));
  EXPECT_FALSE(ParseUint("-1"));
  EXPECT_EQ(ParseHex("1F90"), 8080u);
  EXPECT_EQ(ParseDouble("61.52"), 61.52);
  EXPECT_FALSE(ParseDouble("inf"));
  EXPECT_FALSE(ParseDouble("nan"));
  EXPECT_FALSE(ParseDouble("1.5W"));
}

TEST(Text, LinesDropCarriageReturnsAndTheFinalEmptyPiece) {
  auto lines = SplitLines("a\r\nb\n\nc");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "a");
  EXPECT_EQ(lines[2], "");
  EXPECT_EQ(lines[3], "c");
  EXPECT_EQ(SplitLines("a\n").size(), 1u);
  EXPECT_EQ(FirstLine("\n  \n  first  \nsecond"), "first");
}

TEST(Text, LogEscapingKeepsLinesOneLine) {
  EXPECT_EQ(EscapeForLog("/status", 256), "/status");
  EXPECT_EQ(EscapeForLog("/a\r\nINJECTED", 256), "/a\\x0d\\x0aINJECTED");
  EXPECT_EQ(EscapeForLog("abcdef", 3), "abc...");
  EXPECT_EQ(EscapeForLog("a\\b", 10), "a\\x5cb");
}

TEST(Text, Utf8SanitizingReplacesOnlyBrokenSequences) {
  EXPECT_EQ(SanitizeUtf8("caf\xC3\xA9 \xF0\x9F\x9A\x80"), "caf\xC3\xA9 \xF0\x9F\x9A\x80");
  EXPECT_EQ(SanitizeUtf8("a\xFF"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(SanitizeUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  EXPECT_EQ(SanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // cut short
}

TEST(Text, UtcTimesAreRfc3339) {
  EXPECT_EQ(FormatUtc(std::chrono::system_clock::from_time_t(1714564800)), "2024-05-01T12:00:00Z");
}

TEST(Text, HttpTokensAreTheRfcsCharactersOnly) {
  for (const char* ok : {"GET", "X-Forwarded-For", "a!#$%&'*+-.^_`|~9"})
    EXPECT_TRUE(IsHttpToken(ok)) << ok;
  for (const char* bad : {"", "GET ", "a:b", "caf\xc3\xa9", "a\"b", "(x)", "a/b"}) {
    EXPECT_FALSE(IsHttpToken(bad)) << bad;
  }
}

TEST(FindPasswdEntry, TheFirstWellFormedLineOfThatUidGivesNameAndHome) {
  auto e = FindPasswdEntry("mallory:x:1001:1001:Mallory:/home/m:/bin/sh\n", 1001);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->name, "mallory");
  EXPECT_EQ(e->home, "/home/m");
  e = FindPasswdEntry("a:x:7:7::/:/bin/sh\nmallory:x:1001:1:::\n", 1001);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->name, "mallory");
  EXPECT_EQ(e->home, "");
  // A line cut short still names its account; one without a uid field does not.
  EXPECT_EQ(FindPasswdEntry("short:x:5\n", 5).value_or(PasswdEntry{"?", ""}).name, "short");
  EXPECT_FALSE(FindPasswdEntry("mallory:x:1001:1001:::\n", 1000));
  for (const char* text :
       {"", "no colons here\n:x:1001:1:::\n", "bad name:x:1001:1:::\n", "m:x:notanumber:1:::\n",
        "m:x\n", "m:x:10010:1:::\n", "m:x:1001x:1:::\n", "ctl\x01:x:1001:1:::\n"}) {
    EXPECT_FALSE(FindPasswdEntry(text, 1001)) << text;
  }
  EXPECT_FALSE(FindPasswdEntry(std::string(65, 'n') + ":x:1001:1:::\n", 1001));
  EXPECT_TRUE(FindPasswdEntry(std::string(64, 'n') + ":x:1001:1:::\n", 1001));
}

}  // namespace
}  // namespace tether
