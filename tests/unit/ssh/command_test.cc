// RunCommand over a scripted channel: what the server sends arrives one step per wait, so
// the tests say in which order the streams, their EOF, the exit status and the close come,
// and check what RunCommand collects and when it stops.
#include "ssh/command.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <string>

namespace tether::ssh {
namespace {

// What the server sends between two waits.
struct Arrival {
  std::string out, err;
  bool eof = false;  // on both streams
  int exit_status = -1;
  std::string exit_signal;
  bool closed = false;

  Arrival& Out(std::string s) { return out = std::move(s), *this; }
  Arrival& Err(std::string s) { return err = std::move(s), *this; }
  Arrival& Eof() { return eof = true, *this; }
  Arrival& Exit(int status) { return exit_status = status, *this; }
  Arrival& Signal(std::string name) { return exit_signal = std::move(name), *this; }
  Arrival& Close() { return closed = true, *this; }
};

class ScriptedChannel : public CommandChannel {
 public:
  explicit ScriptedChannel(std::deque<Arrival> script) : script_(std::move(script)) {}

  // Makes `a` arrive before the first wait.
  void ArriveNow(const Arrival& a) { Apply(a); }

  Status Start(const std::string& command) override {
    command_ = command;
    if (!start_error_.empty()) return MakeError("remote command", start_error_);
    return Status::Ok();
  }
  Status SendInput(const std::string& input) override {
    input_ = input;
    return Status::Ok();
  }
  size_t Read(bool is_stderr, char* buf, size_t cap, bool* ended) override {
    std::string& from = is_stderr ? err_ : out_;
    size_t n = std::min(cap, from.size());
    from.copy(buf, n);
    from.erase(0, n);
    if (n == 0 && (eof_ || closed_)) *ended = true;
    return n;
  }
  void Wait(std::chrono::milliseconds) override {
    ++waits_;
    if (script_.empty()) {
      // The script is over and RunCommand still waits: end it, and say so.
      ran_dry_ = true;
      eof_ = closed_ = true;
      return;
    }
    Apply(script_.front());
    script_.pop_front();
  }
  bool Closed() const override { return closed_; }
  int exit_status() const override { return exit_status_; }
  std::string exit_signal() const override { return exit_signal_; }

  std::string start_error_;
  std::string command_, input_;
  int waits_ = 0;
  bool ran_dry_ = false;

 private:
  void Apply(const Arrival& a) {
    out_ += a.out;
    err_ += a.err;
    eof_ |= a.eof;
    closed_ |= a.closed;
    if (a.exit_status >= 0) exit_status_ = a.exit_status;
    if (!a.exit_signal.empty()) exit_signal_ = a.exit_signal;
  }

  std::deque<Arrival> script_;
  std::string out_, err_;
  bool eof_ = false, closed_ = false;
  int exit_status_ = -1;
  std::string exit_signal_;
};

CommandLimits Limits(std::chrono::milliseconds timeout = std::chrono::hours(1),
                     size_t max_output = 1u << 20) {
  CommandLimits l;
  l.timeout = timeout;
  l.max_output = max_output;
  return l;
}

TEST(RunCommand, CollectsBothStreamsAndWaitsForTheExitStatusAfterEof) {
  ScriptedChannel ch({Arrival().Out("hello ").Err("warn"), Arrival().Out("world").Eof(),
                      Arrival().Exit(3), Arrival().Close()});
  auto r = RunCommand(ch, "greet", "", Limits());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ch.command_, "greet");
  EXPECT_EQ(r->out, "hello world");
  EXPECT_EQ(r->err, "warn");
  EXPECT_EQ(r->exit_status, 3);
  EXPECT_EQ(r->exit_signal, "");
  EXPECT_FALSE(r->timed_out);
  EXPECT_FALSE(r->truncated);
  EXPECT_EQ(ch.waits_, 3);  // done at the exit status: the close is not waited for
  EXPECT_FALSE(ch.ran_dry_);
}

TEST(RunCommand, ReportsTheSignalThatEndedTheCommand) {
  ScriptedChannel ch({Arrival().Eof(), Arrival().Signal("KILL")});
  auto r = RunCommand(ch, "sleep 100", "", Limits());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_status, -1);
  EXPECT_EQ(r->exit_signal, "KILL");
  EXPECT_FALSE(ch.ran_dry_);
}

TEST(RunCommand, EndsAtTheCloseWhenNoExitStatusCame) {
  ScriptedChannel ch({Arrival().Out("partial").Eof(), Arrival().Close()});
  auto r = RunCommand(ch, "cmd", "", Limits());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "partial");
  EXPECT_EQ(r->exit_status, -1);
  EXPECT_FALSE(r->timed_out);
  EXPECT_FALSE(ch.ran_dry_);
}

TEST(RunCommand, FeedsTheInputOnStdin) {
  ScriptedChannel ch({Arrival().Eof().Exit(0)});
  auto r = RunCommand(ch, "IFS= read -r p", "secret\n", Limits());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ch.input_, "secret\n");
  EXPECT_EQ(r->exit_status, 0);
}

TEST(RunCommand, CutsAStreamAtTheOutputBoundAndLeaves) {
  // `yes`: output without end. RunCommand must stop at the bound, not wait for an end.
  std::deque<Arrival> endless(1000, Arrival().Out(std::string(4096, 'y')));
  ScriptedChannel ch(endless);
  auto r = RunCommand(ch, "yes", "", Limits(std::chrono::hours(1), 10000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, std::string(10000, 'y'));
  EXPECT_TRUE(r->truncated);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_status, -1);
  EXPECT_EQ(ch.waits_, 3);  // 4096, 8192, then past 10000
}

TEST(RunCommand, BoundsStderrToo) {
  ScriptedChannel ch({});
  ch.ArriveNow(Arrival().Out("ok").Err(std::string(100, 'e')));
  auto r = RunCommand(ch, "noisy", "", Limits(std::chrono::hours(1), 50));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "ok");
  EXPECT_EQ(r->err, std::string(50, 'e'));
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(ch.waits_, 0);
}

TEST(RunCommand, StopsAtTheTimeBoundKeepingWhatCame) {
  // Arrived at once; then the server goes quiet (the script would end it, were it waited for).
  ScriptedChannel ch({Arrival().Out(" never").Eof().Exit(0)});
  ch.ArriveNow(Arrival().Out("so far"));
  auto r = RunCommand(ch, "hang", "", Limits(std::chrono::milliseconds(0)));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->out, "so far");
  EXPECT_EQ(r->exit_status, -1);
  EXPECT_EQ(ch.waits_, 0);
}

TEST(RunCommand, AnExecRefusedIsAnError) {
  ScriptedChannel ch({});
  ch.start_error_ = "the server refused it: no shell";
  auto r = RunCommand(ch, "uname -sm", "", Limits());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().step, "remote command");
  EXPECT_EQ(r.error().code, ErrorCode::kOther);
  EXPECT_EQ(r.error().message, "the server refused it: no shell");
  EXPECT_EQ(ch.input_, "");  // nothing was sent to a command that does not run
}

}  // namespace
}  // namespace tether::ssh
