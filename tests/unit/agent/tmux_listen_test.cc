// The small pieces the agent's parsers stand on: tmux lines and --listen.
#include <gtest/gtest.h>

#include "agent/listen.h"
#include "agent/tmux.h"

namespace tether::agent {
namespace {

TEST(TmuxSessions, ParsesNameWindowsAttachedCreated) {
  auto sessions = ParseTmuxSessions("train\t3\t1\t1714550000\nmy sess,x\t1\t0\t1714551111\n");
  ASSERT_TRUE(sessions.ok()) << sessions.error().ToString();
  ASSERT_EQ(sessions->size(), 2u);
  EXPECT_EQ((*sessions)[0], (TmuxSession{"train", 3, 1, 1714550000}));
  EXPECT_EQ((*sessions)[1], (TmuxSession{"my sess,x", 1, 0, 1714551111}));
}

TEST(TmuxSessions, ANameWithATabSurvives) {
  auto sessions = ParseTmuxSessions("a\tb\t2\t0\t5\n");
  ASSERT_TRUE(sessions.ok());
  EXPECT_EQ((*sessions)[0].name, "a\tb");
}

TEST(TmuxSessions, RejectsOtherFormats) {
  for (const char* text : {"train: 3 windows (created Tue May  1 10:00:00 2024)\n", "train\t3\t1\n",
                           "\t3\t1\t5\n", "train\tx\t1\t5\n"}) {
    EXPECT_FALSE(ParseTmuxSessions(text).ok()) << text;
  }
  auto empty = ParseTmuxSessions("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(TmuxSessions, NoServerMeansNoSessions) {
  EXPECT_TRUE(IsTmuxNoServer("no server running on /tmp/tmux-1000/default\n"));
  EXPECT_TRUE(
      IsTmuxNoServer("error connecting to /tmp/tmux-0/default (No such file or directory)"));
  EXPECT_FALSE(IsTmuxNoServer("tmux: need UTF-8 locale\n"));
}

struct ListenCase {
  const char* text;
  bool ok;
  ListenAddress expected;
};

class ListenGrammar : public ::testing::TestWithParam<ListenCase> {};

TEST_P(ListenGrammar, ParsesTheDocumentedExamples) {
  const ListenCase& c = GetParam();
  auto got = ParseListenAddress(c.text);
  ASSERT_EQ(got.ok(), c.ok) << c.text;
  if (c.ok) {
    EXPECT_EQ(*got, c.expected) << c.text;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ListenGrammar,
    ::testing::Values(ListenCase{"127.0.0.1:8080", true, {"127.0.0.1", 8080}},
                      ListenCase{"[::1]:8080", true, {"::1", 8080}},
                      ListenCase{"localhost:8080", true, {"localhost", 8080}},
                      ListenCase{"8080", true, {"127.0.0.1", 8080}},
                      ListenCase{"127.0.0.1:0", true, {"127.0.0.1", 0}},
                      ListenCase{"0.0.0.0:9100", true, {"0.0.0.0", 9100}},
                      ListenCase{"", false, {}}, ListenCase{"::1:8080", false, {}},
                      ListenCase{"[::1]8080", false, {}}, ListenCase{"[nope]:8080", false, {}},
                      ListenCase{":8080", false, {}}, ListenCase{"127.0.0.1:", false, {}},
                      ListenCase{"127.0.0.1:65536", false, {}},
                      ListenCase{"127.0.0.1:-1", false, {}},
                      ListenCase{"127.0.0.1:http", false, {}}));

TEST(ListenAddress, KnowsLoopback) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "gpu01"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

}  // namespace
}  // namespace tether::agent
