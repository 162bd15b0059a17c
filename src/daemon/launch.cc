#include "daemon/launch.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace tether::daemon {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kReady = 'R';
constexpr char kFailed = 'E';
constexpr size_t kFailedFields = 5;  // code, errno, step, message, hint

// A field of the word: its text with any NUL (the separator) made a space.
void AppendField(std::string& word, std::string_view text) {
  for (char c : text) word += c == '\0' ? ' ' : c;
  word += '\0';
}

bool ParseInt(const std::string& text, int* value) {
  if (text.empty()) return false;
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (*end != '\0') return false;
  *value = static_cast<int>(v);
  return true;
}

// In the child: its own session, no terminal, the log for output.
void Detach(const std::string& log_path) {
  ::setsid();
  ::umask(077);
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, STDIN_FILENO);
    if (devnull > STDERR_FILENO) ::close(devnull);
  }
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log >= 0) {
    ::dup2(log, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    if (log > STDERR_FILENO) ::close(log);
  }
}

}  // namespace

void ReadySignal::Report(const Status& started) {
  if (!fd_) return;
  std::string word = EncodeReadyWord(started);
  // Shorter than PIPE_BUF in practice, so one write; a parent gone is no matter.
  [[maybe_unused]] ssize_t w = ::write(fd_.get(), word.data(), word.size());
  fd_.Reset();
}

std::string EncodeReadyWord(const Status& started) {
  std::string word;
  if (started.ok()) {
    word += kReady;
    word += '\0';
    return word;
  }
  const Error& e = started.error();
  word += kFailed;
  AppendField(word, std::to_string(static_cast<int>(e.code)));
  AppendField(word, std::to_string(e.sys_errno));
  AppendField(word, e.step);
  AppendField(word, e.message);
  AppendField(word, e.hint);
  return word;
}

ReadyWord DecodeReadyWord(std::string_view bytes) {
  ReadyWord word;
  if (bytes.empty()) return word;
  if (bytes[0] == kReady) {
    if (bytes.size() >= 2)
      word.state = bytes[1] == '\0' ? ReadyWord::State::kReady : ReadyWord::State::kBad;
    return word;
  }
  if (bytes[0] != kFailed) {
    word.state = ReadyWord::State::kBad;
    return word;
  }
  std::vector<std::string> fields;
  size_t pos = 1;
  // Bounded by the input: every field ends at a NUL further on.
  while (fields.size() < kFailedFields) {
    size_t nul = bytes.find('\0', pos);
    if (nul == std::string_view::npos) return word;  // need more
    fields.emplace_back(bytes.substr(pos, nul - pos));
    pos = nul + 1;
  }
  int code = 0, sys_errno = 0;
  if (!ParseInt(fields[0], &code) || !ParseInt(fields[1], &sys_errno) || code < 0 ||
      code > static_cast<int>(ErrorCode::kPolicy)) {
    word.state = ReadyWord::State::kBad;
    return word;
  }
  word.state = ReadyWord::State::kFailed;
  word.error = Error{fields[2], fields[3], fields[4], sys_errno, static_cast<ErrorCode>(code)};
  return word;
}

Result<pid_t> Launch(const LaunchOptions& options, const DaemonBody& body) {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) return ErrnoError("daemon", "pipe", errno);
  UniqueFd read_end(ends[0]), write_end(ends[1]);
  // What the caller printed must not come out twice, from both processes.
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t child = ::fork();
  if (child < 0) return ErrnoError("daemon", "fork", errno);
  if (child == 0) {
    read_end.Reset();
    Detach(options.log_path);
    ReadySignal ready(std::move(write_end));
    int code = body(ready);
    ::_exit(code);
  }

  write_end.Reset();
  std::string bytes;
  ReadyWord word;
  const auto deadline = Clock::now() + options.ready_timeout;
  char buf[4096];
  // Bounded by the deadline: every round waits at most until it, or reads.
  while (word.state == ReadyWord::State::kNeedMore) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{read_end.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    ssize_t got = ::read(read_end.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // the child ended (or closed its end) without a word
    bytes.append(buf, static_cast<size_t>(got));
    word = DecodeReadyWord(bytes);
  }
  if (word.state == ReadyWord::State::kReady) return child;
  if (word.state == ReadyWord::State::kFailed) return std::move(word.error);
  ::kill(child, SIGTERM);
  return MakeError(options.name, "the daemon did not start; see " + options.log_path);
}

}  // namespace tether::daemon
