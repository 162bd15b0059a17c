#include "cli/service.h"

#include <gtest/gtest.h>

namespace tether::cli {
namespace {

TEST(Service, TheUnitRunsUpInTheForegroundAndRestartsOnFailure) {
  const std::string unit = SystemdUnit({"/usr/bin/tether", "gpu", ""});
  EXPECT_NE(unit.find("\nExecStart=/usr/bin/tether up gpu --foreground\n"), std::string::npos)
      << unit;
  EXPECT_NE(unit.find("\nExecStop=/usr/bin/tether down gpu\n"), std::string::npos) << unit;
  EXPECT_NE(unit.find("\nRestart=on-failure\n"), std::string::npos);
  EXPECT_NE(unit.find("\nWantedBy=default.target\n"), std::string::npos);
}

TEST(Service, AConfigFileGoesOnBothCommandLinesQuotedForSystemd) {
  const std::string unit = SystemdUnit({"/opt/my tools/tether", "gpu", "/home/a b/100%.conf"});
  EXPECT_NE(unit.find("ExecStart=\"/opt/my tools/tether\" -F \"/home/a b/100%%.conf\" up gpu "
                      "--foreground\n"),
            std::string::npos)
      << unit;
  EXPECT_NE(unit.find("ExecStop=\"/opt/my tools/tether\" -F \"/home/a b/100%%.conf\" down gpu\n"),
            std::string::npos)
      << unit;
}

TEST(Service, SystemdQuotingEscapesWhatSystemdReads) {
  EXPECT_EQ(SystemdQuote("plain"), "plain");
  EXPECT_EQ(SystemdQuote("50%"), "50%%");
  EXPECT_EQ(SystemdQuote("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(SystemdQuote("a\\b c"), "\"a\\\\b c\"");
  EXPECT_EQ(SystemdQuote("$HOME x"), "\"$$HOME x\"");
  EXPECT_EQ(SystemdQuote(""), "\"\"");
}

TEST(Service, TheLaunchdAgentKeepsItAliveAndEscapesItsStrings) {
  const std::string plist =
      LaunchdPlist({"/usr/local/bin/tether", "a&b", ""}, "dev.tether.a_b", "/tmp/log");
  EXPECT_NE(plist.find("<string>a&amp;b</string>"), std::string::npos) << plist;
  EXPECT_NE(plist.find("<string>--foreground</string>"), std::string::npos);
  EXPECT_NE(plist.find("<key>RunAtLoad</key>\n  <true/>"), std::string::npos);
  EXPECT_NE(plist.find("<key>SuccessfulExit</key>\n    <false/>"), std::string::npos);
  EXPECT_EQ(plist.find("a&b"), std::string::npos) << "an unescaped &";
}

TEST(Service, ItsNameIsAFileName) {
  EXPECT_EQ(ServiceName("gpu"), "tether-gpu");
  EXPECT_EQ(ServiceName("../x y"), "tether-_.._x_y");
}

}  // namespace
}  // namespace tether::cli
