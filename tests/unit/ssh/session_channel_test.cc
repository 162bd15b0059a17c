// The exit-signal names of RFC 4254 (section 6.10) to this system's signal numbers: what
// turns a command killed on the server into ssh's exit value 128+n.
#include "ssh/session_channel.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace tether::ssh {
namespace {

TEST(SignalNumber, MapsTheNamesOfRfc4254) {
  const struct {
    const char* name;
    int number;
  } kCases[] = {
      {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"FPE", SIGFPE},   {"HUP", SIGHUP},   {"ILL", SIGILL},
      {"INT", SIGINT},   {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"QUIT", SIGQUIT}, {"SEGV", SIGSEGV},
      {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
  };
  for (const auto& c : kCases) EXPECT_EQ(SignalNumber(c.name), c.number) << c.name;
}

TEST(SignalNumber, KnowsNoOtherName) {
  EXPECT_EQ(SignalNumber(""), 0);
  EXPECT_EQ(SignalNumber("SIGTERM"), 0);  // the wire has no SIG prefix
  EXPECT_EQ(SignalNumber("term"), 0);
  EXPECT_EQ(SignalNumber("TERMX"), 0);
  EXPECT_EQ(SignalNumber("WINCH"), 0);
}

}  // namespace
}  // namespace tether::ssh
