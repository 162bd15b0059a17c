#include "daemon/notify.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace tether::daemon {
namespace {

// Sets (or unsets, for nullopt) an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class NotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-notify-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Program(mode_t mode) {
    const std::string path = dir_ + "/notify-send";
    std::ofstream(path) << "#!/bin/sh\nexit 0\n";
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

#ifndef __APPLE__
TEST_F(NotifyTest, NeedsTheProgramAndADesktopSession) {
  const std::string program = Program(0755);
  ScopedEnv path("PATH", dir_ + ":/nonexistent");
  ScopedEnv wayland("WAYLAND_DISPLAY", std::nullopt);
  ScopedEnv dbus("DBUS_SESSION_BUS_ADDRESS", std::nullopt);
  {
    ScopedEnv display("DISPLAY", std::nullopt);
    EXPECT_TRUE(NotifyCommand("t", "b").empty()) << "no session: nothing to show it on";
    EXPECT_FALSE(NotifyDesktop("t", "b"));
  }
  {
    ScopedEnv display("DISPLAY", "");
    EXPECT_TRUE(NotifyCommand("t", "b").empty()) << "an empty DISPLAY is no display";
  }
  ScopedEnv display("DISPLAY", ":0");
  EXPECT_EQ(NotifyCommand("tether: gpu needs a login", "run: tether login gpu"),
            (std::vector<std::string>{program, "--app-name=tether", "--urgency=critical",
                                      "tether: gpu needs a login", "run: tether login gpu"}));
}

TEST_F(NotifyTest, AProgramThatCannotRunIsNone) {
  Program(0644);
  ScopedEnv path("PATH", dir_);
  ScopedEnv dbus("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent");
  EXPECT_TRUE(NotifyCommand("t", "b").empty());
}
#endif

}  // namespace
}  // namespace tether::daemon
