// The daemon's launch with real forks: the child says it runs, or why it cannot, or
// nothing, and the parent reports each as `up` prints it. The word itself is tested by
// table, whole and in pieces.
#include "daemon/launch.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tether::daemon {
namespace {

namespace fs = std::filesystem;

TEST(ReadyWord, SaysRunning) {
  std::string word = EncodeReadyWord(Status::Ok());
  EXPECT_EQ(DecodeReadyWord(word).state, ReadyWord::State::kReady);
}

TEST(ReadyWord, CarriesEveryFieldOfTheError) {
  Error sent = ErrnoError(ErrorCode::kListen, "127.0.0.1:8080: address in use", EADDRINUSE);
  sent.hint = "another program holds it:\n  ss -ltnp";
  ReadyWord got = DecodeReadyWord(EncodeReadyWord(sent));
  ASSERT_EQ(got.state, ReadyWord::State::kFailed);
  EXPECT_EQ(got.error.code, ErrorCode::kListen);
  EXPECT_EQ(got.error.step, "listen");
  EXPECT_EQ(got.error.message, sent.message);
  EXPECT_EQ(got.error.hint, sent.hint);
  EXPECT_EQ(got.error.sys_errno, EADDRINUSE);
  EXPECT_EQ(got.error.ToString(), sent.ToString());
}

TEST(ReadyWord, NeedsMoreUntilTheWholeWordIsIn) {
  for (const std::string& word :
       {EncodeReadyWord(Status::Ok()), EncodeReadyWord(MakeError("daemon", "bad", "fix"))}) {
    for (size_t n = 0; n < word.size(); ++n) {
      EXPECT_EQ(DecodeReadyWord(word.substr(0, n)).state, ReadyWord::State::kNeedMore)
          << n << " of " << word.size();
    }
  }
}

TEST(ReadyWord, RefusesWhatIsNoWord) {
  using namespace std::string_literals;
  const std::string kRest = "0\0step\0message\0hint\0"s;  // errno and the texts
  for (const std::string& bytes :
       {"ok\n"s, "Rx"s, "E9\0"s + kRest, "E-1\0"s + kRest, "Ex\0"s + kRest, "E0\0y\0s\0m\0h\0"s}) {
    EXPECT_EQ(DecodeReadyWord(bytes).state, ReadyWord::State::kBad) << bytes;
  }
}

class LaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-launch-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    root_ = dir;
    options_.name = "gpu";
    options_.log_path = root_ + "/gpu.log";
  }
  void TearDown() override { fs::remove_all(root_); }

  // The child's end: how it exited (its status, or 128 + the signal that killed it). A
  // failed launch names no pid: then -1, the test's only child.
  static int Reap(pid_t pid = -1) {
    int status = 0;
    if (::waitpid(pid, &status, 0) <= 0) return -1;
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
  }
  std::string Log() const {
    std::ifstream in(options_.log_path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string root_;
  LaunchOptions options_;
};

TEST_F(LaunchTest, ReturnsTheChildOnceItSaysItRuns) {
  auto child = Launch(options_, [](ReadySignal& ready) {
    ready.Report(Status::Ok());
    std::fprintf(stderr, "running in session %d\n", static_cast<int>(::getsid(0)));
    return 7;
  });
  ASSERT_TRUE(child.ok()) << child.error().ToString();
  EXPECT_EQ(Reap(*child), 7);
  // Detached: a session of its own, its stderr in the log, which only we may read.
  EXPECT_EQ(Log(), "running in session " + std::to_string(*child) + "\n");
  EXPECT_EQ(fs::status(options_.log_path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(LaunchTest, GivesTheChildsOwnErrorWhenItCannotStart) {
  auto child = Launch(options_, [](ReadySignal& ready) {
    Error e = MakeError(ErrorCode::kListen, "127.0.0.1:8080: address in use", "pick another port");
    ready.Report(e);
    return 1;
  });
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.error().code, ErrorCode::kListen);
  EXPECT_EQ(child.error().ToString(),
            "listen: 127.0.0.1:8080: address in use\n  pick another port");
  EXPECT_EQ(Reap(), 1);  // not stopped: it ended on its own
}

TEST_F(LaunchTest, AChildThatEndsWithoutAWordDidNotStart) {
  auto child = Launch(options_, [](ReadySignal&) { return 3; });
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.error().ToString(), "gpu: the daemon did not start; see " + options_.log_path);
  EXPECT_EQ(Reap(), 3);
}

TEST_F(LaunchTest, AChildSilentPastTheTimeoutIsStopped) {
  options_.ready_timeout = std::chrono::milliseconds(0);
  auto child = Launch(options_, [](ReadySignal&) {
    ::alarm(20);  // were it not stopped: SIGALRM, not SIGTERM
    ::pause();    // until the parent gives up on it
    return 0;
  });
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.error().step, "gpu");
  EXPECT_EQ(Reap(), 128 + SIGTERM);
}

}  // namespace
}  // namespace tether::daemon
