#include "common/process.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace tether {
namespace {

using std::chrono::milliseconds;

TEST(RunProcess, CapturesStdoutAndTheExitCode) {
  ProcessResult r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"}, {});
  ASSERT_TRUE(r.started) << r.start_error;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Describe(), "exited with 3");
}

TEST(RunProcess, StderrCanGoWithStdoutAndStdinIsEmpty) {
  ProcessOptions options;
  options.stderr_with_stdout = true;
  ProcessResult r = RunProcess({"sh", "-c", "cat; echo err >&2"}, options);
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "err\n");
}

TEST(RunProcess, AProgramThatHangsIsKilledAtTheTimeout) {
  ProcessOptions options;
  options.timeout = milliseconds(200);
  ProcessResult r = RunProcess({"sleep", "30"}, options);
  EXPECT_TRUE(r.started);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Describe(), "gave no answer in time");
}

TEST(RunProcess, ReadsAtMostMaxOutput) {
  ProcessOptions options;
  options.max_output = 1000;
  options.timeout = milliseconds(500);
  ProcessResult r = RunProcess({"yes"}, options);
  EXPECT_EQ(r.out.size(), 1000u);
}

TEST(RunProcess, SaysWhenTheProgramIsNotThere) {
  ProcessResult r = RunProcess({"/nonexistent/tether-no-such-program"}, {});
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.Describe().find("could not be run: "), std::string::npos) << r.Describe();
  EXPECT_FALSE(RunProcess({}, {}).started);
}

TEST(RunProcess, ASignalIsSaid) {
  ProcessResult r = RunProcess({"sh", "-c", "kill -TERM $$"}, {});
  EXPECT_EQ(r.signal, 15);
  EXPECT_EQ(r.Describe(), "was killed by signal 15");
}

TEST(SpawnDetached, StartsWithoutWaitingAndSaysWhyNot) {
  char dir[] = "/tmp/tether-spawn-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string file = std::string(dir) + "/ran";
  EXPECT_EQ(SpawnDetached({"sh", "-c", "echo ran > " + file}, milliseconds(5000)), "");
  bool ran = false;
  for (int i = 0; i < 500 && !ran; ++i) {
    std::ifstream in(file);
    std::string line;
    ran = std::getline(in, line) && line == "ran";
    if (!ran) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(ran);
  EXPECT_NE(SpawnDetached({"/nonexistent/tether-no-such-program"}, milliseconds(100)), "");
  ::unlink(file.c_str());
  ::rmdir(dir);
}

TEST(SelfExecutablePath, IsThisTestBinary) {
  const std::string self = SelfExecutablePath();
  EXPECT_NE(self.find("tether_unit_tests"), std::string::npos) << self;
}

}  // namespace
}  // namespace tether
