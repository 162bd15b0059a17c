// End-to-end: what a person sees at a terminal. tmux runs `tether up` on a real pty;
// the test reads the screen and types answers, as a person would.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "e2e/tether_fixture.h"
#include "e2e/tmux.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

using TtyTest = TetherTest;

std::string UpCommand(TetherTest& t, const std::string& config) {
  return "env TETHER_STATE_DIR=" + t.state_.path() + " " + TetherBinary() + " -F " + config +
         " up testhost; echo EXIT=$?; sleep 60";
}

TEST_F(TtyTest, AsksForTheKeyPassphraseOnTheTerminal) {
  std::string key = scratch_.File("encrypted_key");
  CommandResult gen =
      RunCommand({"ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-C", "", "-f", key});
  ASSERT_TRUE(gen.ok()) << gen.Describe();
  {
    std::ofstream auth(sshd_.dir() + "/authorized_keys", std::ios::app);
    auth << ReadFile(key + ".pub").value();
  }
  // Without the .pub file tether cannot ask the server first: it must decrypt to offer.
  ASSERT_EQ(::unlink((key + ".pub").c_str()), 0);
  std::string config = scratch_.File("tty.conf");
  ClientConfigOptions options;
  options.overrides["IdentityFile"] = key;
  options.overrides["BatchMode"] = "no";
  ASSERT_TRUE(sshd_.WriteClientConfig(config, options).ok());

  Tmux tmux(scratch_.File("tmux.sock"));
  ASSERT_TRUE(tmux.Start(UpCommand(*this, config)));
  ASSERT_TRUE(tmux.WaitForText("Enter passphrase for key '" + key + "'", seconds(15)))
      << tmux.Screen();
  ASSERT_TRUE(tmux.Type("wrong guess"));
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string screen = tmux.Screen();
        size_t first = screen.find("Enter passphrase");
        return first != std::string::npos &&
               screen.find("Enter passphrase", first + 1) != std::string::npos;
      },
      seconds(15)))
      << "no second prompt after a wrong passphrase:\n"
      << tmux.Screen();
  ASSERT_TRUE(tmux.Type("correct horse"));
  ASSERT_TRUE(tmux.WaitForText("EXIT=", seconds(15))) << tmux.Screen();
  std::string screen = tmux.Screen();
  EXPECT_NE(screen.find("EXIT=0"), std::string::npos) << screen;
  EXPECT_NE(screen.find("testhost is up"), std::string::npos) << screen;
  EXPECT_EQ(screen.find("correct horse"), std::string::npos) << "the passphrase was echoed";
}

TEST_F(TtyTest, AsksAboutAnUnknownHostKeyAndRemembersIt) {
  std::string known = scratch_.File("known_hosts");
  std::string config = scratch_.File("ask.conf");
  ClientConfigOptions options;
  options.overrides["UserKnownHostsFile"] = known;
  options.overrides["StrictHostKeyChecking"] = "ask";
  options.overrides["BatchMode"] = "no";
  ASSERT_TRUE(sshd_.WriteClientConfig(config, options).ok());

  Tmux tmux(scratch_.File("tmux.sock"));
  ASSERT_TRUE(tmux.Start(UpCommand(*this, config)));
  ASSERT_TRUE(tmux.WaitForText("(yes/no/[fingerprint])?", seconds(15))) << tmux.Screen();
  EXPECT_NE(tmux.Screen().find(sshd_.host_key_sha256_fingerprint()), std::string::npos)
      << tmux.Screen();
  ASSERT_TRUE(tmux.Type("yes"));
  ASSERT_TRUE(tmux.WaitForText("EXIT=", seconds(15))) << tmux.Screen();
  EXPECT_NE(tmux.Screen().find("EXIT=0"), std::string::npos) << tmux.Screen();
  auto text = ReadFile(known);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find(sshd_.host_pubkey_line()), std::string::npos) << *text;
}

}  // namespace
}  // namespace tether::testing
