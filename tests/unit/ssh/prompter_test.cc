// Who answers a prompt (ssh's readpass.c rules, as a table), and an SSH_ASKPASS program
// run for real: its argument, its answer, its failure.
#include "ssh/prompter.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_support/scoped_env.h"

namespace tether::ssh {
namespace {

using test_support::ScopedEnv;

struct RouteCase {
  const char* what;
  bool batch_mode;
  bool terminal;
  bool display;
  AskpassRequire require;
  PromptRoute want;
  const char* why_contains;  // for kNobody
};

TEST(PromptRoute, FollowsSshsRulesForTerminalDisplayAndAskpassRequire) {
  using R = AskpassRequire;
  using P = PromptRoute;
  const std::vector<RouteCase> cases = {
      {"terminal, nothing set", false, true, false, R::kUnset, P::kTerminal, ""},
      {"terminal and display, unset", false, true, true, R::kUnset, P::kTerminal, ""},
      {"terminal and display, prefer", false, true, true, R::kPrefer, P::kAskpass, ""},
      {"terminal, no display, prefer", false, true, false, R::kPrefer, P::kTerminal, ""},
      {"terminal, force", false, true, false, R::kForce, P::kAskpass, ""},
      {"terminal and display, never", false, true, true, R::kNever, P::kTerminal, ""},
      {"no terminal, display, unset", false, false, true, R::kUnset, P::kAskpass, ""},
      {"no terminal, display, prefer", false, false, true, R::kPrefer, P::kAskpass, ""},
      {"no terminal, no display, unset", false, false, false, R::kUnset, P::kNobody,
       "SSH_ASKPASS_REQUIRE=force"},
      {"no terminal, no display, prefer", false, false, false, R::kPrefer, P::kNobody,
       "DISPLAY or WAYLAND_DISPLAY"},
      {"no terminal, no display, force", false, false, false, R::kForce, P::kAskpass, ""},
      {"no terminal, display, never", false, false, true, R::kNever, P::kNobody,
       "SSH_ASKPASS_REQUIRE=never"},
      {"BatchMode beats a terminal", true, true, true, R::kUnset, P::kNobody, "BatchMode"},
      {"BatchMode beats force", true, false, false, R::kForce, P::kNobody, "BatchMode"},
  };
  for (const RouteCase& c : cases) {
    PromptSetting setting;
    setting.batch_mode = c.batch_mode;
    setting.have_terminal = c.terminal;
    setting.have_display = c.display;
    setting.require = c.require;
    PromptChoice choice = ChoosePromptRoute(setting);
    EXPECT_EQ(choice.route, c.want) << c.what;
    if (c.want == P::kNobody) {
      EXPECT_NE(choice.why_nobody.find(c.why_contains), std::string::npos)
          << c.what << ": " << choice.why_nobody;
      EXPECT_FALSE(choice.advice.empty()) << c.what << ": nothing to do about it";
    }
    TtyPrompter prompter(setting);
    EXPECT_EQ(prompter.CanPrompt(), c.want != P::kNobody) << c.what;
  }
}

TEST(PromptSetting, ReadsAskpassRequireAndTheDisplayFromTheEnvironment) {
  ScopedEnv askpass("SSH_ASKPASS", "/opt/my-askpass");
  ScopedEnv display("DISPLAY", "");
  ScopedEnv wayland("WAYLAND_DISPLAY", "wayland-0");
  const std::vector<std::pair<const char*, AskpassRequire>> cases = {
      {"force", AskpassRequire::kForce}, {"PREFER", AskpassRequire::kPrefer},
      {"Never", AskpassRequire::kNever}, {"sometimes", AskpassRequire::kUnset},
      {nullptr, AskpassRequire::kUnset},
  };
  for (const auto& [text, want] : cases) {
    ScopedEnv require("SSH_ASKPASS_REQUIRE", text);
    PromptSetting s = PromptSetting::FromEnvironment(false);
    EXPECT_EQ(s.require, want) << (text ? text : "(unset)");
    EXPECT_TRUE(s.have_display) << "WAYLAND_DISPLAY counts as a display";
    EXPECT_EQ(s.askpass, "/opt/my-askpass");
  }
  askpass.Set(nullptr);
  wayland.Set(nullptr);
  PromptSetting s = PromptSetting::FromEnvironment(true);
  EXPECT_FALSE(s.have_display) << "an empty DISPLAY is no display";
  EXPECT_EQ(s.askpass, kDefaultAskpass);
  EXPECT_TRUE(s.batch_mode);
}

class AskpassTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-askpass-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // An askpass script with `body` (sh), and a prompter that uses it.
  TtyPrompter With(const std::string& body) {
    const std::string path = dir_ + "/askpass";
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0700);
    PromptSetting setting;
    setting.askpass = path;
    setting.require = AskpassRequire::kForce;
    return TtyPrompter(setting);
  }

  std::string dir_;
};

TEST_F(AskpassTest, GetsThePromptAsItsArgumentAndAnswersWithItsFirstLine) {
  TtyPrompter p =
      With("printf '%s' \"$1\" > " + dir_ + "/asked; printf 'open sesame\\r\\nmore\\n'");
  ASSERT_TRUE(p.CanPrompt());
  auto answer = p.Ask("(alice@gpu) Verification code: ", false);
  ASSERT_TRUE(answer.has_value()) << p.WhyNot();
  EXPECT_EQ(*answer, "open sesame");
  std::ifstream asked(dir_ + "/asked");
  std::string got((std::istreambuf_iterator<char>(asked)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "(alice@gpu) Verification code: ");
}

TEST_F(AskpassTest, ANonZeroExitIsNoAnswerAndSaysSo) {
  TtyPrompter p = With("echo not-this; exit 3");
  EXPECT_FALSE(p.Ask("Password: ", false).has_value());
  EXPECT_NE(p.WhyNot().find("exited with 3"), std::string::npos) << p.WhyNot();
}

TEST_F(AskpassTest, AMissingProgramIsNoAnswerAndNamesIt) {
  PromptSetting setting;
  setting.askpass = dir_ + "/no-such-askpass";
  setting.require = AskpassRequire::kForce;
  TtyPrompter p(setting);
  EXPECT_FALSE(p.Ask("Password: ", false).has_value());
  EXPECT_NE(p.WhyNot().find(dir_ + "/no-such-askpass"), std::string::npos) << p.WhyNot();
}

}  // namespace
}  // namespace tether::ssh
