// End-to-end: StrictHostKeyChecking=ask answered "no", or never clearly, at a real
// terminal (tmux runs `tether up` on a pty; the test types as a person would). Either way
// the connection is refused, known_hosts is left as it was and no daemon stays behind.
#include <gtest/gtest.h>

#include <string>

#include "e2e/tether_fixture.h"
#include "e2e/tmux.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

constexpr char kQuestion[] = "(yes/no/[fingerprint])?";
constexpr char kAgain[] = "Please type 'yes', 'no' or the fingerprint:";
// A line of another host that must survive whatever is answered.
constexpr char kOtherHost[] =
    "other.example.com ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIOv1yTU3HoDFmkQ0lN4k6y3HkXq4cS2sB0m5J8bV7nZ1\n";

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class HostKeyPromptTest : public TetherTest {
 protected:
  void SetUp() override {
    TetherTest::SetUp();
    if (HasFatalFailure()) return;
    known_ = scratch_.File("known_hosts");
    ASSERT_TRUE(WriteFile(known_, kOtherHost).ok());
    config_ = scratch_.File("ask.conf");
    ClientConfigOptions options;
    options.overrides["UserKnownHostsFile"] = known_;
    options.overrides["StrictHostKeyChecking"] = "ask";
    options.overrides["BatchMode"] = "no";
    ASSERT_TRUE(sshd_.WriteClientConfig(config_, options).ok());
    tmux_ = std::make_unique<Tmux>(scratch_.File("tmux.sock"));
    // The shell stays (sleep) so that the screen can be read after tether exits.
    ASSERT_TRUE(tmux_->Start("env TETHER_STATE_DIR=" + state_.path() + " " + TetherBinary() +
                             " -F " + config_ + " up testhost; echo EXIT=$?; sleep 60"));
    ASSERT_TRUE(tmux_->WaitForText(kQuestion, seconds(15))) << tmux_->Screen();
  }
  void TearDown() override {
    tmux_.reset();  // ends tmux (and the sleep) by its PID
    TetherTest::TearDown();
  }

  // After `tether up` said EXIT=: refused, nothing written, nothing running.
  void ExpectRefusedAndNothingLeft(const std::string& screen) {
    EXPECT_NE(screen.find("EXIT=1"), std::string::npos) << screen;
    EXPECT_NE(
        screen.find("host key for [127.0.0.1]:" + std::to_string(sshd_.port()) + " not accepted"),
        std::string::npos)
        << screen;
    EXPECT_EQ(screen.find("is up"), std::string::npos) << screen;
    auto known = ReadFile(known_);
    ASSERT_TRUE(known.ok()) << known.error().ToString();
    EXPECT_EQ(*known, kOtherHost) << "known_hosts changed";
    EXPECT_TRUE(StateFiles().empty()) << "left in the state directory: " << StateFiles().size()
                                      << " file(s), e.g. " << StateFiles().front();
    CommandResult status = RunTether(state_.path(), {"status", "--json"});
    EXPECT_EQ(status.out.find("\"testhost\""), std::string::npos) << status.Describe();
    // sshd saw the key exchange and nothing after it: no session was opened.
    EXPECT_EQ(sshd_.LogTail(100000).find("Accepted publickey"), std::string::npos)
        << sshd_.LogTail();
  }

  std::string known_;
  std::string config_;
  std::unique_ptr<Tmux> tmux_;
};

TEST_F(HostKeyPromptTest, NoRefusesTheConnectionAndWritesNothing) {
  EXPECT_NE(tmux_->Screen().find(sshd_.host_key_sha256_fingerprint()), std::string::npos)
      << tmux_->Screen();
  ASSERT_TRUE(tmux_->Type("no"));
  ASSERT_TRUE(tmux_->WaitForText("EXIT=", seconds(15))) << tmux_->Screen();
  std::string screen = tmux_->Screen();
  EXPECT_EQ(Count(screen, kQuestion), 1u) << "asked again after a clear no:\n" << screen;
  EXPECT_EQ(Count(screen, kAgain), 0u) << screen;
  ExpectRefusedAndNothingLeft(screen);
}

TEST_F(HostKeyPromptTest, ThreeUnclearAnswersRefuseWithoutAFourthQuestion) {
  ASSERT_TRUE(tmux_->Type("maybe"));
  ASSERT_TRUE(tmux_->WaitForText(kAgain, seconds(15))) << tmux_->Screen();
  ASSERT_TRUE(tmux_->Type("y"));
  ASSERT_TRUE(WaitFor([&] { return Count(tmux_->Screen(), kAgain) == 2; }, seconds(15)))
      << tmux_->Screen();
  ASSERT_TRUE(tmux_->Type("sure"));
  ASSERT_TRUE(tmux_->WaitForText("EXIT=", seconds(15)))
      << "still asking after three unclear answers:\n"
      << tmux_->Screen();
  std::string screen = tmux_->Screen();
  EXPECT_EQ(Count(screen, kQuestion), 1u) << screen;
  EXPECT_EQ(Count(screen, kAgain), 2u) << "three questions in all:\n" << screen;
  EXPECT_NE(screen.find("no clear answer in 3 tries"), std::string::npos) << screen;
  ExpectRefusedAndNothingLeft(screen);
}

}  // namespace
}  // namespace tether::testing
