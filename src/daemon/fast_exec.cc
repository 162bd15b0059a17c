#include "daemon/fast_exec.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/fs.h"
#include "common/log.h"
#include "common/runner_wire.h"

namespace tether::daemon {
namespace {

// What one line from the runner's start may hold: a greeting with a socket's path.
constexpr size_t kMaxLine = 4096;
// What the runner's binary may weigh (a static build is ~7 MB, a sanitizer build more).
constexpr size_t kMaxBinary = size_t{512} << 20;

// A content hash names the binary on the server: a new build never runs an old copy.
std::string Fnv1a64Hex(const std::string& bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::string LocalSystem() {
  utsname me{};
  ::uname(&me);
  return std::string(me.sysname) + " " + me.machine;
}

// Single quotes for sh, for text we made ourselves.
std::string Quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string RunnerStartCommand(const std::string& remote_path, const std::string& local_system) {
  return "F=" + remote_path + "; if [ \"$(uname -sm)\" != " + Quote(local_system) +
         " ]; then echo \"tether-runner: system $(uname -sm)\"; elif [ -x \"$F\" ]; then exec "
         "\"$F\" "
         "--runner; else echo 'tether-runner: missing'; fi";
}

std::string RunnerInstallCommand(const std::string& remote_path) {
  return "F=" + remote_path +
         "; umask 077 && mkdir -p \"${F%/*}\" && cat > \"$F.$$\" && chmod 700 \"$F.$$\" && "
         "mv -f \"$F.$$\" \"$F\"";
}

const char* FastExec::StateName(State s) {
  switch (s) {
    case State::kDown:
      return "down";
    case State::kStarting:
      return "starting";
    case State::kInstalling:
      return "installing";
    case State::kReady:
      return "ready";
    case State::kUnavailable:
      return "unavailable";
  }
  return "down";
}

FastExec::FastExec(net::EventLoop& loop, SessionPool& pool, std::string alias, std::string binary)
    : loop_(loop),
      pool_(pool),
      alias_(std::move(alias)),
      binary_path_(std::move(binary)),
      local_system_(LocalSystem()) {
  pool_.OnRunnerTrouble([this](const std::string& why) { OnTrouble(why); });
}

FastExec::~FastExec() {
  pool_.OnRunnerTrouble(nullptr);
  pool_.SetRunner("");
  if (retry_timer_ != 0) loop_.CancelTimer(retry_timer_);
  if (greeting_timer_ != 0) loop_.CancelTimer(greeting_timer_);
  Close();
}

bool FastExec::ReadBinary(std::string* bytes) {
  // Read in the event loop, so by large reads: a sanitizer build's binary is tens of MB.
  const int err = ReadFile(binary_path_, bytes, kMaxBinary);
  if (err != 0 || bytes->empty()) {
    state_ = State::kUnavailable;
    why_ = "no tether-agent at " + binary_path_ + " to run there (" +
           (err != 0 ? std::string(std::strerror(err)) : std::string("empty")) +
           "; build it, or set TETHER_AGENT_BIN)";
    spdlog::warn("[{}] fast exec: {}", alias_, why_);
    return false;
  }
  // Named by what is copied: a rebuild since the name was made gets a name of its own.
  remote_path_ = "\"$HOME/.cache/tether/bin/tether-agent-" + Fnv1a64Hex(*bytes) + "\"";
  return true;
}

bool FastExec::KnowBinary() {
  if (!remote_path_.empty()) return true;
  std::string bytes;  // only the name is kept: the bytes are read again for a copy
  return ReadBinary(&bytes);
}

void FastExec::LinkUp() {
  link_up_ = true;
  retry_ = kRunnerRetryMin;
  unreachable_ = 0;
  if (state_ == State::kUnavailable && !remote_path_.empty())
    state_ = State::kDown;  // try the new server
  if (session_ == 0) Launch();
}

void FastExec::LinkDown() {
  link_up_ = false;
  pool_.SetRunner("");
  Close();  // its session ended with the link
  if (state_ != State::kUnavailable) state_ = State::kDown;
}

void FastExec::Close() {
  ++generation_;
  if (session_ != 0) {
    pool_.End(session_);  // the channel closes: the runner's stdin ends, and so does it
    session_ = 0;
  }
  if (greeting_timer_ != 0) {
    loop_.CancelTimer(greeting_timer_);
    greeting_timer_ = 0;
  }
  for (UniqueFd* fd : {&io_, &err_}) {
    if (*fd) {
      loop_.Unwatch(fd->get());
      fd->Reset();
    }
  }
  out_buf_.clear();
  err_buf_.clear();
  std::string().swap(upload_);
}

void FastExec::Launch() {
  retry_timer_ = 0;
  if (!link_up_ || state_ == State::kUnavailable) return;
  if (!KnowBinary()) return;
  Close();
  const bool install = state_ == State::kInstalling;
  if (install) {
    if (!ReadBinary(&upload_)) return;
    spdlog::info("[{}] fast exec: copying the runner ({} KiB) to the server", alias_,
                 upload_.size() >> 10);
  }
  last_said_.clear();
  int io[2], err[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, io) != 0) return RetryLater();
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, err) != 0) {
    ::close(io[0]);
    ::close(io[1]);
    return RetryLater();
  }
  io_ = UniqueFd(io[0]);
  err_ = UniqueFd(err[0]);
  UniqueFd theirs(io[1]);
  UniqueFd theirs_in(::fcntl(io[1], F_DUPFD_CLOEXEC, 0));
  UniqueFd theirs_err(err[1]);
  ::fcntl(io_.get(), F_SETFL, O_NONBLOCK);
  ::fcntl(err_.get(), F_SETFL, O_NONBLOCK);
  const uint64_t generation = ++generation_;
  if (!install) state_ = State::kStarting;
  started_at_ = std::chrono::steady_clock::now();
  upload_sent_ = 0;

  ExecRequest request;
  request.command = install ? RunnerInstallCommand(remote_path_)
                            : RunnerStartCommand(remote_path_, local_system_);
  request.force_session = true;  // never itself by the runner
  SessionPool::SessionEvents events;
  events.started = [this, generation](bool ok, const std::string& error, bool) {
    if (generation != generation_) return;
    if (!ok) OnEnded(error);
  };
  events.finished = [this, generation, install](uint32_t exit_value) {
    if (generation != generation_) return;
    session_ = 0;
    // Every byte of its output is written by now, not necessarily read: its last words
    // ("missing", or why the copy failed) decide what comes next.
    if (!install) OnOutput();
    if (generation != generation_) return;
    OnErrorOutput();
    if (install && exit_value == 0) {
      spdlog::info("[{}] fast exec: the runner is copied to the server", alias_);
      state_ = State::kStarting;
      Close();
      Launch();
      return;
    }
    OnEnded(install
                ? "copying the runner to the server failed (exit " + std::to_string(exit_value) +
                      ")" + (last_said_.empty() ? "" : ": " + last_said_)
                : "the runner ended (exit " + std::to_string(exit_value) + ")");
  };
  session_ = pool_.Start(std::move(request), std::move(theirs_in), std::move(theirs),
                         std::move(theirs_err), std::move(events),
                         install ? "fast exec: copying the runner" : "fast exec: the runner");
  loop_.Watch(io_.get(), install ? net::kWritable : net::kReadable,
              [this](unsigned) { OnOutput(); });
  loop_.Watch(err_.get(), net::kReadable, [this](unsigned) { OnErrorOutput(); });
  if (!install) {
    greeting_timer_ = loop_.AddTimer(kRunnerGreetingTimeout, [this, generation] {
      greeting_timer_ = 0;
      if (generation != generation_ || state_ != State::kStarting) return;
      OnEnded("the runner did not start within " + std::to_string(kRunnerGreetingTimeout.count()) +
              " s");
    });
  }
}

void FastExec::OnOutput() {
  if (state_ == State::kInstalling) {
    // The copy: the binary on its stdin, then EOF.
    while (upload_sent_ < upload_.size()) {
      ssize_t n = ::send(io_.get(), upload_.data() + upload_sent_, upload_.size() - upload_sent_,
                         MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
      if (n <= 0) return loop_.SetInterest(io_.get(), net::kNone);  // its end tells
      upload_sent_ += static_cast<size_t>(n);
    }
    ::shutdown(io_.get(), SHUT_WR);
    loop_.SetInterest(io_.get(), net::kNone);
    return;
  }
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(io_.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      loop_.SetInterest(io_.get(), net::kNone);  // the session's end says the rest
      return;
    }
    out_buf_.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = out_buf_.find('\n')) != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      OnLine(line);
      if (!io_) return;  // the line closed it
    }
    if (out_buf_.size() > kMaxLine) out_buf_.clear();  // not the runner talking
  }
}

void FastExec::OnErrorOutput() {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(err_.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      loop_.SetInterest(err_.get(), net::kNone);
      return;
    }
    // Kept short for the log and for why the copy failed.
    if (err_buf_.size() < kMaxLine) err_buf_.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = err_buf_.find('\n')) != std::string::npos) {
      last_said_ = err_buf_.substr(0, nl);
      spdlog::info("[{}] fast exec: the server says: {}", alias_, last_said_);
      err_buf_.erase(0, nl + 1);
    }
  }
}

void FastExec::OnLine(const std::string& line) {
  const std::string greeting =
      std::string(runner::kGreeting) + " " + std::to_string(runner::kProtocolVersion) + " /";
  if (line.rfind(greeting, 0) == 0) {
    std::string socket = line.substr(greeting.size() - 1);
    state_ = State::kReady;
    why_.clear();
    pool_.SetRunner(socket);
    spdlog::info("[{}] fast exec: the runner is ready ({})", alias_, socket);
    return;
  }
  if (line == "tether-runner: missing") {
    state_ = State::kInstalling;
    Close();
    Launch();
    return;
  }
  if (line.rfind("tether-runner: system ", 0) == 0) {
    Close();
    state_ = State::kUnavailable;
    why_ = "the server runs " + line.substr(22) + "; the runner built here is for " + local_system_;
    spdlog::warn("[{}] fast exec: {}; commands go as sessions", alias_, why_);
    return;
  }
  if (line.rfind("tether-runner: restart", 0) == 0) {
    // Its environment is stale (an rc file changed): it ends after its commands, and the
    // next one starts with what sshd gives now.
    pool_.SetRunner("");
    why_ = "the shell's startup files changed";
    retry_ = std::chrono::seconds(0);
    spdlog::info("[{}] fast exec: the runner starts again: {}", alias_, why_);
  }
}

void FastExec::OnEnded(const std::string& why) {
  pool_.SetRunner("");
  const bool was_healthy =
      state_ == State::kReady && std::chrono::steady_clock::now() - started_at_ >= kRunnerHealthy;
  if (why_.empty() || state_ != State::kReady) why_ = why;
  Close();
  if (state_ == State::kUnavailable) return;
  state_ = State::kDown;
  if (was_healthy) retry_ = std::chrono::seconds(0);
  spdlog::info("[{}] fast exec: {}; commands go as sessions until it is back", alias_, why);
  RetryLater();
}

void FastExec::OnTrouble(const std::string& why) {
  // A refusal is the runner's own choice (it is stopping, or full): it says the rest.
  if (why.rfind("the runner refused", 0) == 0) return;
  if (state_ != State::kReady) return;
  unreachable_ = pool_.by_runner() == by_runner_at_trouble_ ? unreachable_ + 1 : 1;
  by_runner_at_trouble_ = pool_.by_runner();
  if (unreachable_ >= kRunnerUnreachableLimit) {
    pool_.SetRunner("");
    Close();
    state_ = State::kUnavailable;
    why_ = "commands cannot reach the runner over the connection (" + why +
           "); does the server's sshd allow it (AllowStreamLocalForwarding)?";
    spdlog::warn("[{}] fast exec: {}; commands go as sessions", alias_, why_);
    return;
  }
  spdlog::warn("[{}] fast exec: {}: starting the runner again", alias_, why);
  why_ = why;
  pool_.SetRunner("");
  Close();
  state_ = State::kDown;
  retry_ = std::chrono::seconds(0);
  RetryLater();
}

void FastExec::RetryLater() {
  if (!link_up_ || retry_timer_ != 0) return;
  ++restarts_;
  auto delay = retry_;
  retry_ = std::min(kRunnerRetryMax, std::max(kRunnerRetryMin, retry_ * 2));
  retry_timer_ = loop_.AddTimer(
      delay.count() == 0 ? std::chrono::milliseconds(50) : std::chrono::milliseconds(delay),
      [this] { Launch(); });
}

}  // namespace tether::daemon
