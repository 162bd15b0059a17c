// The resident runner's frames (common/runner_wire.h): what the daemon and the runner
// say, taken apart however the bytes arrive, and a peer that speaks something else.
#include "common/runner_wire.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace tether::runner {
namespace {

TEST(RunnerWire, FramesComeApartWhateverTheReadsCut) {
  std::string stream;
  AppendFrame(stream, Frame::kRun, EncodeRun({"echo hi", {"LANG=C.UTF-8", "A=b=c"}}));
  AppendFrame(stream, Frame::kStdin, std::string(70000, 'x'));
  AppendFrame(stream, Frame::kStdinEof, "");
  AppendFrame(stream, Frame::kExit, EncodeExit(143));
  for (size_t cut : {size_t{1}, size_t{3}, size_t{4096}, stream.size()}) {
    FrameReader reader;
    std::vector<std::pair<Frame, std::string>> got;
    for (size_t at = 0; at < stream.size(); at += cut) {
      reader.Feed(stream.data() + at, std::min(cut, stream.size() - at));
      Frame type;
      std::string payload;
      while (reader.Next(&type, &payload) == FrameReader::Result::kFrame) {
        got.emplace_back(type, payload);
      }
    }
    ASSERT_EQ(got.size(), 4u) << "reads of " << cut;
    auto run = DecodeRun(got[0].second);
    ASSERT_TRUE(run);
    EXPECT_EQ(run->command, "echo hi");
    EXPECT_EQ(run->env, (std::vector<std::string>{"LANG=C.UTF-8", "A=b=c"}));
    EXPECT_EQ(got[1].second, std::string(70000, 'x'));
    EXPECT_EQ(got[2].first, Frame::kStdinEof);
    EXPECT_EQ(DecodeExit(got[3].second), 143u);
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

TEST(RunnerWire, AnotherProtocolIsBrokenNotBuffered) {
  Frame type;
  std::string payload;
  FrameReader http;
  http.Feed("GET / HTTP/1.1\r\n", 16);
  EXPECT_EQ(http.Next(&type, &payload), FrameReader::Result::kBroken);
  // A known type that claims more than any frame may hold.
  FrameReader huge;
  std::string header = "o";
  header += std::string("\x7f\xff\xff\xff", 4);
  huge.Feed(header.data(), header.size());
  EXPECT_EQ(huge.Next(&type, &payload), FrameReader::Result::kBroken);
  FrameReader partial;
  partial.Feed("o\0\0", 3);
  EXPECT_EQ(partial.Next(&type, &payload), FrameReader::Result::kNeedMore);
}

TEST(RunnerWire, ARunRequestWithoutACommandOrWithABadVariableIsRefused) {
  EXPECT_FALSE(DecodeRun(""));
  EXPECT_FALSE(DecodeRun(EncodeRun({"", {}})));
  EXPECT_FALSE(DecodeRun(EncodeRun({"true", {"NOVALUE"}})));
  EXPECT_FALSE(DecodeRun(EncodeRun({"true", {"=x"}})));
  EXPECT_FALSE(DecodeRun(EncodeRun({std::string("a\0b", 3), {}})));
  std::string cut = EncodeRun({"true", {"A=1"}});
  EXPECT_FALSE(DecodeRun(cut.substr(0, cut.size() - 1)));
  EXPECT_FALSE(DecodeExit("abc"));
}

TEST(RunnerWire, AnEndIsItsStatusOrOneHundredTwentyEightPlusTheSignal) {
  pid_t exits = ::fork();
  if (exits == 0) ::_exit(7);
  int status = 0;
  ASSERT_EQ(::waitpid(exits, &status, 0), exits);
  EXPECT_EQ(ExitValueOf(status), 7u);
  pid_t killed = ::fork();
  if (killed == 0) {
    ::pause();
    ::_exit(0);
  }
  ::kill(killed, SIGKILL);
  ASSERT_EQ(::waitpid(killed, &status, 0), killed);
  EXPECT_EQ(ExitValueOf(status), 128u + SIGKILL);
}

}  // namespace
}  // namespace tether::runner
