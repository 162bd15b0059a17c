// End-to-end: what keeps a host up and in view. tether service install writes a systemd
// user unit that systemd itself accepts (systemd-analyze verify), says so plainly when there
// is no user session to enable it in, and uninstall removes it; tether status --watch
// redraws in place on a terminal and prints table after table elsewhere.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "e2e/tether_fixture.h"
#include "e2e/tmux.h"

namespace tether::testing {
namespace {

class ServiceTest : public TetherTest {
 protected:
  CommandResult Service(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"-F", sshd_.config_path(), "service"};
    all.insert(all.end(), args.begin(), args.end());
    // A config home of the test's own; no user bus, so systemctl --user cannot enable.
    return RunTether(state_.path(), all, std::chrono::seconds(30),
                     {{"XDG_CONFIG_HOME", scratch_.File("config")},
                      {"DBUS_SESSION_BUS_ADDRESS", "unix:path=" + scratch_.File("no-bus")},
                      {"XDG_RUNTIME_DIR", scratch_.File("no-runtime")}});
  }
  std::string UnitPath() { return scratch_.File("config/systemd/user/tether-testhost.service"); }
};

TEST_F(ServiceTest, PrintShowsTheUnitAndWritesNothing) {
  CommandResult r = Service({"install", "testhost", "--print"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_NE(r.out.find("ExecStart=" + std::string(TetherBinary()) + " -F " + sshd_.config_path() +
                       " up testhost --foreground"),
            std::string::npos)
      << r.out;
  EXPECT_NE(::access(UnitPath().c_str(), F_OK), 0) << "--print wrote the unit";
}

TEST_F(ServiceTest, InstallWritesAUnitSystemdAcceptsAndUninstallRemovesIt) {
  CommandResult r = Service({"install", "testhost"});
  ASSERT_EQ(::access(UnitPath().c_str(), F_OK), 0) << r.Describe();
  struct stat st {};
  ASSERT_EQ(::stat(UnitPath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // No user session in a test: the unit is written, and the command says it is not started
  // and what to run.
  EXPECT_FALSE(r.ok()) << r.Describe();
  EXPECT_NE(r.out.find("not started"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("systemctl --user enable --now tether-testhost.service"), std::string::npos)
      << r.Describe();

  CommandResult verify = RunCommand({"systemd-analyze", "verify", UnitPath()});
  if (verify.exit_code == 127) GTEST_SKIP() << "no systemd-analyze here";
  EXPECT_TRUE(verify.ok()) << verify.Describe();
  EXPECT_EQ(verify.err.find(UnitPath()), std::string::npos) << "a warning on the unit\n"
                                                            << verify.Describe();

  CommandResult gone = Service({"uninstall", "testhost"});
  EXPECT_TRUE(gone.ok()) << gone.Describe();
  EXPECT_NE(::access(UnitPath().c_str(), F_OK), 0);
  CommandResult again = Service({"uninstall", "testhost"});
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.err.find("no service for testhost"), std::string::npos) << again.Describe();
}

// tether status --watch: a pane kept open on the table.
TEST_F(ServiceTest, StatusWatchPrintsTableAfterTableWithoutEscapesWhenNotATerminal) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  // Interrupted after 2.5 s, as a user's Ctrl-C would.
  CommandResult r = RunCommand({"timeout", "-s", "INT", "2.5", TetherBinary(), "status", "--watch"},
                               {{"TETHER_STATE_DIR", state_.path()}}, std::chrono::seconds(10));
  size_t tables = 0;
  for (size_t at = r.out.find("every 1 s"); at != std::string::npos;
       at = r.out.find("every 1 s", at + 1)) {
    ++tables;
  }
  EXPECT_GE(tables, 2u) << r.Describe();
  EXPECT_NE(r.out.find("testhost"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "escape codes into a pipe";
}

TEST_F(ServiceTest, StatusWatchRedrawsInPlaceOnATerminal) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  Tmux tmux(scratch_.File("tmux.sock"));
  ASSERT_TRUE(tmux.Start("env TERM=xterm TETHER_STATE_DIR=" + state_.path() + " " + TetherBinary() +
                         " status --watch"));
  ASSERT_TRUE(tmux.WaitForText("Ctrl-C to stop", std::chrono::seconds(10))) << tmux.Screen();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  // What is on the screen now: one table, at the top, not a scroll of them.
  const std::string screen = tmux.Run({"capture-pane", "-p"}).out;
  size_t headers = 0;
  for (size_t at = screen.find("RECONNECTS"); at != std::string::npos;
       at = screen.find("RECONNECTS", at + 1)) {
    ++headers;
  }
  EXPECT_EQ(headers, 1u) << screen;
  EXPECT_EQ(screen.find("every 1 s"), 10u) << "the time line is not at the top\n" << screen;
  (void)tmux.Run({"send-keys", "C-c"});
}

}  // namespace
}  // namespace tether::testing
