#include "ssh/command.h"

#include <poll.h>

#include <algorithm>
#include <vector>

#include "ssh/session.h"
#include "ssh/session_channel.h"

namespace tether::ssh {
namespace {

using Clock = std::chrono::steady_clock;

// A read takes at most this much; the bounds are checked between reads.
constexpr size_t kReadChunk = 16384;
// How long one wait for the server lasts at most: the time bound is checked between waits.
constexpr std::chrono::milliseconds kWaitSlice{500};

// A session channel on a blocking session, waiting on the session's descriptor.
class SessionCommandChannel : public CommandChannel {
 public:
  explicit SessionCommandChannel(Session& session) : fd_(session.fd()), channel_(session.raw()) {}

  Status Start(const std::string& command) override {
    if (!channel_.created()) return MakeError("remote command", "cannot create a channel");
    if (channel_.OpenSession() != Step::kDone) {
      return MakeError("remote command", "cannot open a session channel: " + channel_.error());
    }
    if (channel_.RequestExec(command) != Step::kDone) {
      return MakeError("remote command", "the server refused it: " + channel_.error());
    }
    return Status::Ok();
  }

  Status SendInput(const std::string& input) override {
    Status s = channel_.WriteAll(input);
    if (s.ok()) s = channel_.SendEof();
    if (!s.ok()) return MakeError("remote command", "cannot write its input: " + s.error().message);
    return s;
  }

  size_t Read(bool is_stderr, char* buf, size_t cap, bool* ended) override {
    // Small outputs: libssh's own window (it never grants less than 1.28 MB) is plenty.
    Result<size_t> n = channel_.Read(buf, cap, is_stderr, static_cast<uint32_t>(cap));
    if (n.ok() && *n > 0) return *n;
    // Nothing buffered for this stream: after EOF or close, nothing more will be.
    if (!n.ok() || channel_.IsEof() || channel_.IsClosed()) *ended = true;
    return 0;
  }

  void Wait(std::chrono::milliseconds wait) override {
    pollfd p{fd_, POLLIN, 0};
    (void)::poll(&p, 1, static_cast<int>(wait.count()));
    channel_.TakeIn();
  }

  bool Closed() const override { return channel_.IsClosed(); }
  int exit_status() const override { return channel_.exit_status(); }
  std::string exit_signal() const override { return channel_.exit_signal(); }

 private:
  int fd_;
  SessionChannel channel_;
};

// Moves what `stream` has now into `into`, cut at `max`. False when it passed `max`.
bool Collect(CommandChannel& channel, bool is_stderr, std::vector<char>& buf, size_t max,
             std::string& into, bool& ended) {
  // Bounded by max: every round adds at least one byte or stops.
  while (!ended) {
    size_t n = channel.Read(is_stderr, buf.data(), buf.size(), &ended);
    if (n == 0) break;
    into.append(buf.data(), n);
    if (into.size() > max) {
      into.resize(max);
      return false;
    }
  }
  return true;
}

}  // namespace

Result<CommandResult> RunCommand(CommandChannel& channel, const std::string& command,
                                 const std::string& input, const CommandLimits& limits) {
  Status s = channel.Start(command);
  if (s.ok()) s = channel.SendInput(input);
  if (!s.ok()) return s.take_error();
  const auto deadline = Clock::now() + limits.timeout;
  CommandResult r;
  std::vector<char> buf(kReadChunk);
  bool out_ended = false, err_ended = false;
  // Bounded by the deadline: every round that does not end waits, and the wait is bounded.
  for (;;) {
    // stderr is read along with stdout: a command that writes much of it would otherwise
    // fill the channel's window and never get to its stdout.
    if (!Collect(channel, false, buf, limits.max_output, r.out, out_ended) ||
        !Collect(channel, true, buf, limits.max_output, r.err, err_ended)) {
      r.truncated = true;
      break;
    }
    // The exit status comes after the streams' EOF, and before the close.
    if (out_ended && err_ended &&
        (channel.exit_status() >= 0 || !channel.exit_signal().empty() || channel.Closed())) {
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      break;
    }
    channel.Wait(std::min(left, kWaitSlice));
  }
  r.exit_status = channel.exit_status();
  r.exit_signal = channel.exit_signal();
  return r;
}

Result<CommandResult> RunCommand(Session& session, const std::string& command,
                                 const std::string& input, const CommandLimits& limits) {
  SessionCommandChannel channel(session);
  return RunCommand(channel, command, input, limits);
}

}  // namespace tether::ssh
