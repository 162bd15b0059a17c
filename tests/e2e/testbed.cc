#include "e2e/testbed.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#ifndef TETHER_BIN
#error "TETHER_BIN must name the tether binary under test"
#endif

extern char** environ;

namespace tether::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a process gets to die after SIGKILL before we give up waiting for it.
constexpr milliseconds kKillWait{5000};
// After a command exits, how long its pipes may stay open (a grandchild still holding them)
// before RunCommand stops reading and reports pipes_left_open.
constexpr milliseconds kPipeGrace{1000};
// One poll slice of the loops below: short enough to notice exits and deadlines promptly.
constexpr milliseconds kPollSlice{20};
// How long sshd gets to start listening.
constexpr milliseconds kSshdStartTimeout{10000};
// Attempts at a free port for sshd: another process may take the port we picked.
constexpr int kSshdPortAttempts = 3;
constexpr size_t kChunk = size_t{64} * 1024;

milliseconds Remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? left : milliseconds(0);
}

int PollMs(milliseconds d) {
  return static_cast<int>(std::min<long long>(d.count(), 1'000'000'000LL));
}

// Writes through a pipe or socket whose reader is gone fail with EPIPE instead of killing
// the test binary. Children get SIGPIPE back to default before exec.
void IgnoreSigpipe() {
  static std::once_flag once;
  std::call_once(once, [] { ::signal(SIGPIPE, SIG_IGN); });
}

std::string Trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The first whitespace-separated word of a config line, lowercased ("" for blank/comment).
std::string Keyword(const std::string& line) {
  std::string t = Trim(line);
  if (t.empty() || t[0] == '#') return {};
  size_t end = t.find_first_of(" \t=");
  return Lower(t.substr(0, end));
}

int ExitCodeFromStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// ---- /proc

struct ProcStat {
  char state = '?';
  pid_t ppid = 0;
  uint64_t start_time = 0;  // clock ticks after boot: tells a reused PID apart
};

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text.ok()) return std::nullopt;
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text->substr(close + 1));
  std::vector<std::string> fields;
  std::string f;
  while (in >> f && fields.size() < 20) fields.push_back(f);
  if (fields.size() < 20) return std::nullopt;
  ProcStat st;
  st.state = fields[0][0];
  st.ppid = static_cast<pid_t>(std::strtol(fields[1].c_str(), nullptr, 10));
  st.start_time = std::strtoull(fields[19].c_str(), nullptr, 10);
  return st;
}

bool AllDead(const std::vector<pid_t>& pids) {
  return std::none_of(pids.begin(), pids.end(), [](pid_t p) { return ProcessAlive(p); });
}

// SIGTERM to every PID, a bounded wait, SIGKILL to the survivors, a bounded wait.
void TerminatePids(const std::vector<pid_t>& pids, milliseconds grace) {
  if (pids.empty()) return;
  for (pid_t p : pids) ::kill(p, SIGTERM);
  if (WaitFor([&] { return AllDead(pids); }, grace)) return;
  for (pid_t p : pids) {
    if (ProcessAlive(p)) ::kill(p, SIGKILL);
  }
  WaitFor([&] { return AllDead(pids); }, kKillWait);
}

// ---- spawning

// Everything a child needs, prepared before fork: after fork in a threaded process only
// async-signal-safe calls are allowed, so no allocation happens there.
struct SpawnPlan {
  std::string path;
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;
};

Result<std::string> ResolveExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path_env = std::getenv("PATH");
  std::string path = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return MakeError("spawn", "'" + name + "' not found in PATH");
}

Result<SpawnPlan> MakePlan(const std::vector<std::string>& argv, const Env& extra_env) {
  if (argv.empty()) return MakeError("spawn", "empty argv");
  auto path = ResolveExecutable(argv[0]);
  if (!path.ok()) return path.take_error();
  SpawnPlan plan;
  plan.path = std::move(*path);
  plan.argv_storage = argv;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry = *e;
    std::string key = entry.substr(0, entry.find('='));
    if (extra_env.count(key) == 0) plan.env_storage.push_back(std::move(entry));
  }
  for (const auto& [key, value] : extra_env) plan.env_storage.push_back(key + "=" + value);
  for (auto& a : plan.argv_storage) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  for (auto& e : plan.env_storage) plan.envp.push_back(e.data());
  plan.envp.push_back(nullptr);
  return plan;
}

// Puts `from` on `to` without FD_CLOEXEC (dup2 onto itself would keep the flag).
void MoveFd(int from, int to) {
  if (from == to) {
    ::fcntl(to, F_SETFD, 0);
  } else {
    ::dup2(from, to);
  }
}

// In the forked child: async-signal-safe calls only. Never returns.
[[noreturn]] void ExecChild(const SpawnPlan& plan, int in_fd, int out_fd, int err_fd, int report_fd,
                            bool die_with_parent, pid_t parent) {
  ::setpgid(0, 0);
  if (die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  MoveFd(in_fd, 0);
  MoveFd(out_fd, 1);
  MoveFd(err_fd, 2);
  // Nothing else of the test binary (servers' sockets, other commands' pipes) may leak into
  // the child: a leaked socket keeps a connection half-open after the test closed it.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (int fd = 3; fd < 4096; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  ::execve(plan.path.c_str(), plan.argv.data(), plan.envp.data());
  int e = errno;
  ssize_t ignored = ::write(report_fd, &e, sizeof e);
  (void)ignored;
  ::_exit(127);
}

// Forks and execs; on success returns the PID. `report` reads the child's exec errno.
Result<pid_t> ForkExec(const SpawnPlan& plan, int in_fd, int out_fd, int err_fd,
                       bool die_with_parent) {
  IgnoreSigpipe();
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return ErrnoError("spawn", "pipe", errno);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(report[0]);
    ::close(report[1]);
    return ErrnoError("spawn", "fork", e);
  }
  if (pid == 0) {
    ::close(report[0]);
    ExecChild(plan, in_fd, out_fd, err_fd, report[1], die_with_parent, parent);
  }
  ::close(report[1]);
  ::setpgid(pid, pid);  // also here, so a kill of the group cannot race the child's setpgid
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    int status = 0;
    ::waitpid(pid, &status, 0);  // it has called _exit already
    return ErrnoError("spawn", "exec " + plan.path, child_errno);
  }
  return pid;
}

UniqueFd OpenDevNull(int flags) { return UniqueFd(::open("/dev/null", flags | O_CLOEXEC)); }

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Waits for a child we forked, polling, up to `timeout`. The exit code, or nullopt.
std::optional<int> WaitChild(pid_t pid, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return ExitCodeFromStatus(status);
    if (r < 0 && errno != EINTR) return -1;  // not our child (any more)
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::min<milliseconds>(Remaining(deadline), milliseconds(5)));
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Files and ports

TempDir::TempDir() {
  char tmpl[] = "/tmp/tether-e2e-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::fprintf(stderr, "testbed: mkdtemp(%s): %s\n", tmpl, std::strerror(errno));
    std::abort();
  }
  ::chmod(tmpl, 0700);
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

// ---------------------------------------------------------------------------------------
// A hermetic environment

namespace {

// What the test binary's own environment must not pass on to tether, sshd or a client:
// the runner's agent, askpass, tether settings and proxies would change what a test
// measures (an agent key logs in where the test means a file key to; a config.toml in
// the runner's home adds forwards and settings). Tests that want one set it on purpose.
constexpr const char* kUnsetVariables[] = {
    "SSH_AUTH_SOCK",    "SSH_AGENT_PID",     "SSH_ASKPASS",   "SSH_ASKPASS_REQUIRE",
    "DISPLAY",          "WAYLAND_DISPLAY",   "TETHER_CONFIG", "TETHER_STATE_DIR",
    "TETHER_AGENT_BIN", "XDG_RUNTIME_DIR",   "TMUX",          "TMUX_TMPDIR",
    "http_proxy",       "https_proxy",       "all_proxy",     "no_proxy",
    "HTTP_PROXY",       "HTTPS_PROXY",       "ALL_PROXY",     "NO_PROXY",
    "socks_proxy",      "SOCKS_PROXY",       "CURL_HOME",     "GIT_SSH",
    "GIT_SSH_COMMAND",  "GIT_CONFIG_GLOBAL", "RSYNC_RSH"};

// Before main(): HOME becomes a fresh private directory of this test process, and the
// XDG directories live inside it, so nothing in the runner's home is read or written.
struct HermeticEnvironment {
  HermeticEnvironment() {
    for (const char* name : kUnsetVariables) ::unsetenv(name);
    const std::string& home = home_dir.path();
    for (const char* sub : {"/.ssh", "/.config", "/.local", "/.local/state", "/.cache"}) {
      ::mkdir((home + sub).c_str(), 0700);
    }
    ::setenv("HOME", home.c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (home + "/.config").c_str(), 1);
    ::setenv("XDG_STATE_HOME", (home + "/.local/state").c_str(), 1);
    ::setenv("XDG_CACHE_HOME", (home + "/.cache").c_str(), 1);
    ::setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
  }
  ~HermeticEnvironment() {
    // A forked child that exits normally must not take the parent's home with it.
    if (::getpid() != creator) home_dir.Release();
  }
  TempDir home_dir;
  pid_t creator = ::getpid();
};

HermeticEnvironment& Hermetic() {
  static HermeticEnvironment env;
  return env;
}

// Runs at load time, before any test (and before gtest's main) looks at the environment.
[[maybe_unused]] const bool g_hermetic = (Hermetic(), true);

}  // namespace

const std::string& TestHome() { return Hermetic().home_dir.path(); }

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

std::string TempDir::File(std::string_view name) const { return path_ + "/" + std::string(name); }

// Test processes run side by side (ctest -j), and each asks for ports it binds later, or
// has sshd or the daemon bind. A port from the kernel's ephemeral range (bind to 0) may be
// handed to some process's outgoing connection in the meantime, and two processes asking
// at once may be given the same one. So ports come from below the ephemeral range
// (kFirstTestPort..kEndTestPort), each process starting at its own place and walking on,
// and only ports that bind now (on 127.0.0.1, and not listened on by anyone) are given.
constexpr uint16_t kFirstTestPort = 20000;
constexpr uint16_t kEndTestPort = 32000;  // Linux's ip_local_port_range starts at 32768

uint16_t FreeTcpPort() {
  constexpr int kRange = kEndTestPort - kFirstTestPort;
  // Spaced 197 apart per PID, so concurrent runs start far from each other.
  static int next = static_cast<int>((static_cast<unsigned>(::getpid()) * 197u) % kRange);
  for (int tries = 0; tries < kRange; ++tries) {
    const uint16_t port = static_cast<uint16_t>(kFirstTestPort + next);
    next = (next + 1) % kRange;
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return port;
  }
  return 0;
}

Result<uint64_t> ProcessMemoryBytes(pid_t pid, std::string_view field) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  auto text = ReadFile(path);
  if (!text.ok()) return text.take_error();
  std::istringstream in(*text);
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {  // "VmRSS:\t   12345 kB"
    if (line.rfind(key, 0) != 0) continue;
    uint64_t kib = std::strtoull(line.c_str() + key.size(), nullptr, 10);
    if (kib == 0) return MakeError("memory", path + ": " + line);
    return kib * 1024;
  }
  return MakeError("memory", path + " has no " + key);
}

Result<size_t> OpenDescriptorCount(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator(path, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  if (ec) return MakeError("descriptors", path + ": " + ec.message());
  return n;
}

bool PortAccepts(uint16_t port, milliseconds timeout) { return ConnectTcp(port, timeout).ok(); }

Status WriteFile(const std::string& path, std::string_view content, int mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return ErrnoError("write file", path, errno);
  ::fchmod(fd.get(), static_cast<mode_t>(mode));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError("write file", path, errno);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("read file", path, errno);
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read file", path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void PrintDaemonLogTail(const std::string& state_dir, size_t bytes, const std::string& host) {
  auto log = ReadFile(state_dir + "/" + host + ".log");
  if (!log.ok()) return;
  std::fprintf(stderr, "daemon log (tail):\n%s",
               log->substr(log->size() > bytes ? log->size() - bytes : 0).c_str());
}

long long MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
}

std::string ReadFileOrEmpty(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() ? std::move(*text) : std::string();
}

size_t CountOccurrences(std::string_view text, std::string_view needle) {
  if (needle.empty()) return 0;
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + needle.size()))
    ++count;
  return count;
}

bool WaitFor(const std::function<bool()>& condition, milliseconds timeout, milliseconds interval) {
  if (interval.count() <= 0) interval = milliseconds(1);
  auto deadline = Clock::now() + timeout;
  const long long max_calls = timeout.count() / interval.count() + 2;
  for (long long i = 0; i < max_calls; ++i) {
    if (condition()) return true;
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::min(interval, Remaining(deadline)));
  }
  return condition();
}

// ---------------------------------------------------------------------------------------
// Processes

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  auto st = ReadProcStat(pid);
  if (!st) return ::kill(pid, 0) == 0 || errno == EPERM;
  return st->state != 'Z' && st->state != 'X';
}

Result<double> ProcessCpuSeconds(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  auto text = ReadFile(path);
  if (!text.ok()) return text.take_error();
  size_t close = text->rfind(')');
  if (close == std::string::npos) return MakeError("cpu", path + ": no ')'");
  std::istringstream in(text->substr(close + 1));
  std::vector<std::string> fields;
  std::string f;
  while (in >> f && fields.size() < 13) fields.push_back(f);
  if (fields.size() < 13) return MakeError("cpu", path + ": too few fields");
  // Fields 14 and 15 of proc(5) (utime, stime), counted from the state (field 3).
  char* end = nullptr;
  unsigned long long utime = std::strtoull(fields[11].c_str(), &end, 10);
  if (end == fields[11].c_str()) return MakeError("cpu", path + ": utime is not a number");
  unsigned long long stime = std::strtoull(fields[12].c_str(), &end, 10);
  if (end == fields[12].c_str()) return MakeError("cpu", path + ": stime is not a number");
  long ticks = ::sysconf(_SC_CLK_TCK);
  if (ticks <= 0) return MakeError("cpu", "sysconf(_SC_CLK_TCK) failed");
  return static_cast<double>(utime + stime) / static_cast<double>(ticks);
}

Result<uint64_t> ProcessRuns(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  uint64_t runs = 0;
  int threads = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    // "<ns on cpu> <ns waiting> <timeslices run>" (Documentation/scheduler/sched-stats).
    auto text = ReadFile(entry.path().string() + "/schedstat");
    if (!text.ok()) continue;  // a thread that just ended
    std::istringstream in(*text);
    uint64_t on_cpu = 0, waiting = 0, slices = 0;
    if (!(in >> on_cpu >> waiting >> slices)) return MakeError("runs", entry.path().string());
    runs += slices;
    ++threads;
  }
  if (ec || threads == 0) return MakeError("runs", "cannot read " + dir + "/*/schedstat");
  return runs;
}

std::vector<pid_t> ProcessDescendants(pid_t root) {
  std::map<pid_t, std::vector<pid_t>> children;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return {};
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    auto st = ReadProcStat(static_cast<pid_t>(pid));
    if (!st || st->state == 'Z' || st->state == 'X') continue;
    children[st->ppid].push_back(static_cast<pid_t>(pid));
  }
  ::closedir(proc);
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {root};
  std::set<pid_t> seen = {root};
  while (!todo.empty()) {  // bounded: every PID is visited once
    pid_t p = todo.back();
    todo.pop_back();
    for (pid_t c : children[p]) {
      if (!seen.insert(c).second) continue;
      out.push_back(c);
      todo.push_back(c);
    }
  }
  return out;
}

bool TerminatePid(pid_t pid, milliseconds grace) {
  if (pid <= 0) return true;
  TerminatePids({pid}, grace);
  return !ProcessAlive(pid);
}

std::string CommandResult::Describe() const {
  std::string s = "exit " + std::to_string(exit_code);
  if (timed_out) s += " (timed out)";
  if (pipes_left_open) s += " (pipes left open)";
  s += "\nstdout: " + out + "\nstderr: " + err;
  return s;
}

CommandResult RunCommand(const std::vector<std::string>& argv, const Env& extra_env,
                         milliseconds timeout, std::string_view stdin_data) {
  CommandResult result;
  auto plan = MakePlan(argv, extra_env);
  if (!plan.ok()) {
    result.exit_code = 127;
    result.err = plan.error().ToString();
    return result;
  }
  int out_pipe[2], err_pipe[2], in_pipe[2] = {-1, -1};
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return result;
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  UniqueFd in_r, in_w;
  if (stdin_data.empty()) {
    in_r = OpenDevNull(O_RDONLY);
  } else {
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) return result;
    in_r.Reset(in_pipe[0]);
    in_w.Reset(in_pipe[1]);
  }

  auto pid = ForkExec(*plan, in_r.get(), out_w.get(), err_w.get(), /*die_with_parent=*/true);
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();
  if (!pid.ok()) {
    result.exit_code = 127;
    result.err = pid.error().ToString();
    return result;
  }

  SetNonBlocking(out_r.get());
  SetNonBlocking(err_r.get());
  if (in_w) SetNonBlocking(in_w.get());
  size_t in_done = 0;
  auto deadline = Clock::now() + timeout;
  std::optional<Clock::time_point> exited_at;
  bool reaped = false;
  char buf[16384];

  for (;;) {  // bounded: ends by the deadline at the latest
    if (!reaped) {
      int status = 0;
      pid_t r = ::waitpid(*pid, &status, WNOHANG);
      if (r == *pid) {
        reaped = true;
        result.exit_code = ExitCodeFromStatus(status);
        exited_at = Clock::now();
      }
    }
    if (reaped && !out_r && !err_r) break;
    if (reaped && Clock::now() - *exited_at > kPipeGrace) {
      result.pipes_left_open = true;
      break;
    }
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      ::kill(-*pid, SIGKILL);
      ::kill(*pid, SIGKILL);
      if (!reaped) {
        auto code = WaitChild(*pid, kKillWait);
        result.exit_code = code.value_or(-1);
      }
      break;
    }

    pollfd fds[3];
    nfds_t n = 0;
    if (out_r) fds[n++] = {out_r.get(), POLLIN, 0};
    if (err_r) fds[n++] = {err_r.get(), POLLIN, 0};
    if (in_w) fds[n++] = {in_w.get(), POLLOUT, 0};
    ::poll(fds, n, PollMs(std::min(kPollSlice, Remaining(deadline))));
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (in_w && fds[i].fd == in_w.get()) {
        ssize_t w = ::write(in_w.get(), stdin_data.data() + in_done, stdin_data.size() - in_done);
        if (w > 0) in_done += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || in_done == stdin_data.size()) {
          in_w.Reset();  // all sent, or the child stopped reading: EOF either way
        }
        continue;
      }
      UniqueFd& src = fds[i].fd == out_r.get() ? out_r : err_r;
      std::string& dst = fds[i].fd == out_r.get() ? result.out : result.err;
      ssize_t r = ::read(src.get(), buf, sizeof buf);
      if (r > 0) {
        dst.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        src.Reset();
      }
    }
  }
  return result;
}

Child::~Child() { Reset(); }

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_code_(std::exchange(other.exit_code_, {})) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    Reset();
    pid_ = std::exchange(other.pid_, -1);
    exit_code_ = std::exchange(other.exit_code_, {});
  }
  return *this;
}

void Child::Reset() {
  if (pid_ > 0 && !exit_code_) Kill();
  pid_ = -1;
  exit_code_.reset();
}

bool Child::Running() {
  if (pid_ <= 0 || exit_code_) return false;
  return !Wait(milliseconds(0)).has_value();
}

std::optional<int> Child::Wait(milliseconds timeout) {
  if (pid_ <= 0) return -1;
  if (exit_code_) return exit_code_;
  exit_code_ = WaitChild(pid_, timeout);
  return exit_code_;
}

bool Child::Signal(int sig) {
  if (pid_ <= 0 || exit_code_) return false;
  return ::kill(pid_, sig) == 0;
}

int Child::Terminate(milliseconds grace) {
  if (Signal(SIGTERM) && Wait(grace)) return *exit_code_;
  return Kill();
}

int Child::Kill() {
  if (pid_ <= 0) return -1;
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    Wait(kKillWait);
  }
  return exit_code_.value_or(-1);
}

Result<Child> SpawnProcess(const std::vector<std::string>& argv, const Env& extra_env,
                           const std::string& log_path, bool die_with_parent_thread) {
  auto plan = MakePlan(argv, extra_env);
  if (!plan.ok()) return plan.take_error();
  UniqueFd in = OpenDevNull(O_RDONLY);
  UniqueFd out;
  if (log_path.empty()) {
    out = OpenDevNull(O_WRONLY);
  } else {
    out.Reset(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!out) return ErrnoError("spawn", "open " + log_path, errno);
  }
  auto pid = ForkExec(*plan, in.get(), out.get(), out.get(), die_with_parent_thread);
  if (!pid.ok()) return pid.take_error();
  return Child(*pid);
}

// ---------------------------------------------------------------------------------------
// Sshd

namespace {

constexpr const char* kDefaultSshd = "/usr/sbin/sshd";
// Debian's sshd is built with this privilege-separation directory and refuses to start as
// root without it; a fresh container has no /run/sshd because no sshd ran there yet.
constexpr const char* kPrivsepDir = "/run/sshd";

Status Keygen(const std::string& path, const std::string& comment) {
  auto r = RunCommand({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path},
                      {}, std::chrono::seconds(20));
  if (!r.ok()) return MakeError("sshd", "ssh-keygen " + path + " failed: " + r.Describe());
  return Status::Ok();
}

// "type base64" from a .pub file (the comment dropped).
Result<std::string> PubkeyLine(const std::string& pub_path) {
  auto text = ReadFile(pub_path);
  if (!text.ok()) return text.take_error();
  std::istringstream in(*text);
  std::string type, blob;
  if (!(in >> type >> blob)) return MakeError("sshd", "unreadable public key " + pub_path);
  return type + " " + blob;
}

// Applies `extra` to the keyword/value `defaults` as SshdOptions documents and renders it.
std::string RenderSshdConfig(std::vector<std::pair<std::string, std::string>> defaults,
                             const std::vector<std::string>& extra) {
  std::vector<std::string> added;
  std::vector<std::string> match_tail;
  bool in_match = false;
  for (const std::string& line : extra) {
    std::string kw = Keyword(line);
    if (kw == "match") in_match = true;
    if (in_match) {
      match_tail.push_back(line);
      continue;
    }
    if (kw.empty()) continue;
    for (auto& entry : defaults) {
      if (Lower(entry.first) == kw) entry.first.clear();  // dropped: this line replaces it
    }
    added.push_back(Trim(line));
  }
  std::string out = "# Written by the tether test bed (tests/e2e/testbed.cc).\n";
  for (const auto& [key, value] : defaults) {
    if (!key.empty()) out += key + " " + value + "\n";
  }
  for (const auto& line : added) out += line + "\n";
  for (const auto& line : match_tail) out += line + "\n";
  return out;
}

std::string CurrentUser() {
  if (passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_name != nullptr) {
    return pw->pw_name;
  }
  const char* u = std::getenv("USER");
  return u ? u : "root";
}

}  // namespace

const std::string& SshdBinary() {
  static const std::string path = [] {
    const char* env = std::getenv("TETHER_TEST_SSHD");
    return std::string(env != nullptr && *env != '\0' ? env : kDefaultSshd);
  }();
  return path;
}

Result<std::string> SshdVersion() {
  // `sshd -V` prints "OpenSSH_10.0p2, OpenSSL ..." (9.2 adds " Debian-2+deb12u7"); 8.4
  // has no -V and prints the same line in its usage message, exiting 1.
  CommandResult r = RunCommand({SshdBinary(), "-V"}, {}, std::chrono::seconds(10));
  std::string text = r.err + r.out;
  size_t at = text.find("OpenSSH_");
  if (at == std::string::npos) {
    return MakeError("sshd", SshdBinary() + " -V does not say its version: " + r.Describe());
  }
  size_t end = text.find_first_of(" ,\n", at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

int SshdVersionNumber(const std::string& binary) {
  static std::mutex mu;
  static std::map<std::string, int> known;
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(binary);
  if (it != known.end()) return it->second;
  CommandResult r = RunCommand({binary, "-V"}, {}, std::chrono::seconds(10));
  std::string text = r.err + r.out;
  int major = 0, minor = 0;
  size_t at = text.find("OpenSSH_");
  if (at == std::string::npos ||
      std::sscanf(text.c_str() + at, "OpenSSH_%d.%d", &major, &minor) != 2) {
    major = minor = 0;
  }
  return known[binary] = major * 100 + minor;
}

std::string AdaptSshdConfig(const std::string& config, const std::string& binary) {
  const int version = SshdVersionNumber(binary);
  if (version == 0 || version >= 807) return config;
  std::istringstream in(config);
  std::string out, line;
  bool in_match = false;
  while (std::getline(in, line)) {
    const std::string kw = Keyword(line);
    if (kw == "match") in_match = true;
    if (!in_match && kw == "kbdinteractiveauthentication") {
      std::string t = Trim(line);
      out += "ChallengeResponseAuthentication " + Trim(t.substr(kw.size() + 1)) + "\n";
    }
    out += line + "\n";
  }
  return out;
}

const std::string& SshdRoot() {
  static const std::string root = [] {
    std::error_code ec;
    std::filesystem::path wrapper = std::filesystem::canonical(SshdBinary(), ec);
    if (ec || wrapper.filename() != "sshd" || wrapper.parent_path().filename() != ".tether") {
      return std::string();
    }
    std::filesystem::path dir = wrapper.parent_path().parent_path();
    // The wrapper's own convention, checked against what the root says it is.
    auto release = ReadFile((dir / "etc/debian_version").string());
    return release.ok() && release->rfind("11.", 0) == 0 ? dir.string() : std::string();
  }();
  return root;
}

Sshd::~Sshd() { Stop(); }

const std::string& Sshd::dir() const {
  static const std::string kNone;
  return dir_ ? dir_->path() : kNone;
}
std::string Sshd::config_path() const { return dir() + "/ssh_config"; }
std::string Sshd::sshd_config_path() const { return dir() + "/sshd_config"; }
std::string Sshd::known_hosts_path() const { return dir() + "/known_hosts"; }
std::string Sshd::mismatched_known_hosts_path() const { return dir() + "/known_hosts_mismatch"; }
std::string Sshd::user_key_path() const { return dir() + "/id_ed25519"; }
std::string Sshd::wrong_key_path() const { return dir() + "/wrong_ed25519"; }
std::string Sshd::log_path() const { return dir() + "/sshd.log"; }

std::string Sshd::LogTail(size_t max_bytes) const {
  auto text = ReadFile(log_path());
  if (!text.ok()) return "(no sshd log: " + text.error().ToString() + ")";
  if (text->size() > max_bytes) return "..." + text->substr(text->size() - max_bytes);
  return *text;
}

Status Sshd::Start(const SshdOptions& options) {
  if (dir_) return MakeError("sshd", "Start() called twice", "use Restart()");
  dir_ = std::make_unique<TempDir>();
  user_ = CurrentUser();
  binary_ = options.binary.empty() ? SshdBinary() : options.binary;

  if (::geteuid() == 0 && ::mkdir(kPrivsepDir, 0755) != 0 && errno != EEXIST) {
    return ErrnoError("sshd", std::string("mkdir ") + kPrivsepDir, errno);
  }

  const std::string d = dir();
  for (const auto& [file, comment] : std::vector<std::pair<std::string, std::string>>{
           {"host_ed25519", "tether-e2e-host"},
           {"id_ed25519", "tether-e2e-user"},
           {"wrong_ed25519", "tether-e2e-wrong-user"},
           {"other_host_ed25519", "tether-e2e-other-host"}}) {
    Status s = Keygen(d + "/" + file, comment);
    if (!s.ok()) return s;
  }
  auto user_pub = ReadFile(user_key_path() + ".pub");
  if (!user_pub.ok()) return user_pub.take_error();
  Status s = WriteFile(d + "/authorized_keys", *user_pub, 0600);
  if (!s.ok()) return s;
  auto host_pub = PubkeyLine(d + "/host_ed25519.pub");
  if (!host_pub.ok()) return host_pub.take_error();
  host_pubkey_ = *host_pub;
  auto other_pub = PubkeyLine(d + "/other_host_ed25519.pub");
  if (!other_pub.ok()) return other_pub.take_error();
  auto fp =
      RunCommand({"ssh-keygen", "-lf", d + "/host_ed25519.pub"}, {}, std::chrono::seconds(20));
  std::istringstream fp_in(fp.out);
  std::string bits;
  if (!fp.ok() || !(fp_in >> bits >> host_fingerprint_)) {
    return MakeError("sshd", "ssh-keygen -lf failed: " + fp.Describe());
  }

  const int attempts = options.port != 0 ? 1 : kSshdPortAttempts;
  Status launched = MakeError("sshd", "no attempt made");
  for (int i = 0; i < attempts; ++i) {
    port_ = options.port != 0 ? options.port : FreeTcpPort();
    if (port_ == 0) return MakeError("sshd", "no free loopback port");
    std::vector<std::pair<std::string, std::string>> defaults = {
        {"ListenAddress", "127.0.0.1"},
        {"Port", std::to_string(port_)},
        {"HostKey", d + "/host_ed25519"},
        {"PidFile", d + "/sshd.pid"},
        {"AuthorizedKeysFile", d + "/authorized_keys"},
        {"StrictModes", "no"},
        {"UsePAM", "no"},
        {"PubkeyAuthentication", "yes"},
        {"PasswordAuthentication", "no"},
        {"KbdInteractiveAuthentication", "no"},
        {"PermitRootLogin", "prohibit-password"},
        {"AllowTcpForwarding", "yes"},
        {"AllowStreamLocalForwarding", "yes"},
        {"MaxStartups", "100"},
        {"LogLevel", "VERBOSE"},
        {"PrintMotd", "no"},
        // scp (SFTP protocol since OpenSSH 9.0) and sftp through the mux socket need it.
        {"Subsystem", "sftp internal-sftp"},
    };
    s = WriteFile(sshd_config_path(),
                  AdaptSshdConfig(RenderSshdConfig(defaults, options.extra_config), binary_), 0600);
    if (!s.ok()) return s;
    launched = Launch();
    if (launched.ok()) break;
  }
  if (!launched.ok()) return launched;

  const std::string host_pattern = "[127.0.0.1]:" + std::to_string(port_);
  s = WriteFile(known_hosts_path(), host_pattern + " " + host_pubkey_ + "\n", 0600);
  if (!s.ok()) return s;
  s = WriteFile(mismatched_known_hosts_path(), host_pattern + " " + *other_pub + "\n", 0600);
  if (!s.ok()) return s;
  return WriteClientConfig(config_path());
}

Status Sshd::Launch() {
  const std::string log = log_path();
  auto before = ReadFile(log);
  const size_t log_offset = before.ok() ? before->size() : 0;
  auto child = SpawnProcess({binary_, "-D", "-e", "-f", sshd_config_path()}, {}, log,
                            /*die_with_parent_thread=*/true);
  if (!child.ok()) return child.take_error();
  listener_ = std::move(*child);

  // "Server listening on 127.0.0.1 port N." means bind and listen are done, without a
  // probe connection cluttering the log; a connect probe covers a LogLevel without it.
  const std::string listening = "Server listening on 127.0.0.1 port " + std::to_string(port_);
  auto start = Clock::now();
  bool up = WaitFor(
      [&] {
        if (!listener_.Running()) return true;
        auto text = ReadFile(log);
        if (text.ok() && text->find(listening, log_offset) != std::string::npos) return true;
        return Clock::now() - start > milliseconds(1000) && PortAccepts(port_);
      },
      kSshdStartTimeout);
  if (!listener_.Running()) {
    return MakeError("sshd",
                     "sshd exited with " + std::to_string(listener_.exit_code().value_or(-1)) +
                         " on port " + std::to_string(port_) + ":\n" + LogTail(),
                     "see " + log);
  }
  if (!up) {
    listener_.Kill();
    return MakeError(
        "sshd", "sshd did not listen on port " + std::to_string(port_) + " in 10 s:\n" + LogTail());
  }
  return Status::Ok();
}

Status Sshd::Restart() {
  if (!dir_) return MakeError("sshd", "Restart() before Start()");
  Stop();
  return Launch();
}

void Sshd::KillSessions() {
  if (listener_.valid() && listener_.Running()) {
    // Rounds, because a session may fork while we kill its siblings.
    for (int round = 0; round < 3; ++round) {
      std::vector<pid_t> sessions = ProcessDescendants(listener_.pid());
      if (sessions.empty()) break;
      TerminatePids(sessions, milliseconds(3000));
    }
  }
  for (int round = 0; round < 3 && !orphans_.empty(); ++round) {
    std::vector<pid_t> targets;
    for (const auto& [pid, start_time] : orphans_) {
      auto st = ReadProcStat(pid);
      if (!st || st->start_time != start_time || st->state == 'Z') continue;  // gone or reused
      targets.push_back(pid);
      for (pid_t d : ProcessDescendants(pid)) targets.push_back(d);
    }
    if (targets.empty()) break;
    TerminatePids(targets, milliseconds(3000));
  }
  orphans_.clear();
}

void Sshd::Stop() {
  KillSessions();
  if (listener_.valid()) listener_.Terminate(milliseconds(5000));
  listener_ = Child();
}

void Sshd::StopListener() {
  if (!listener_.valid() || !listener_.Running()) return;
  // Remember the sessions: once the listener is gone they are no one's descendants, and
  // Stop() must still end them.
  for (pid_t p : ProcessDescendants(listener_.pid())) {
    if (auto st = ReadProcStat(p)) orphans_.emplace_back(p, st->start_time);
  }
  listener_.Terminate(milliseconds(5000));
  listener_ = Child();
}

void Sshd::DropConnections() { KillSessions(); }

bool Sshd::running() { return listener_.valid() && listener_.Running(); }

Status Sshd::WriteClientConfig(const std::string& path, const ClientConfigOptions& options) const {
  if (!dir_) return MakeError("sshd", "WriteClientConfig() before Start()");
  std::vector<std::pair<std::string, std::string>> entries = {
      {"HostName", "127.0.0.1"},
      {"Port", std::to_string(port_)},
      {"User", user_},
      {"IdentityFile", user_key_path()},
      {"IdentitiesOnly", "yes"},
      {"UserKnownHostsFile", known_hosts_path()},
      {"StrictHostKeyChecking", "yes"},
      {"BatchMode", "yes"},
  };
  for (const auto& [key, value] : options.overrides) {
    bool found = false;
    for (auto& entry : entries) {
      if (Lower(entry.first) == Lower(key)) {
        entry.second = value;
        found = true;
      }
    }
    if (!found) entries.emplace_back(key, value);
  }
  std::string text = "# Written by the tether test bed (tests/e2e/testbed.cc).\n";
  text += "Host " + options.host + "\n";
  for (const auto& [key, value] : entries) {
    if (!value.empty()) text += "  " + key + " " + value + "\n";
  }
  for (const auto& line : options.extra_lines) text += "  " + line + "\n";
  return WriteFile(path, text, 0600);
}

// ---------------------------------------------------------------------------------------
// Hashing and the pattern

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) {
    std::fprintf(stderr, "testbed: EVP SHA-256 unavailable\n");
    std::abort();
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::Update(const void* data, size_t n) {
  if (n > 0) EVP_DigestUpdate(impl_->ctx, data, n);
}

std::string Sha256::FinalHex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size_t{len} * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[md[i] >> 4]);
    hex.push_back(kHex[md[i] & 0xf]);
  }
  return hex;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data.data(), data.size());
  return h.FinalHex();
}

PatternGenerator::PatternGenerator(uint64_t seed) : state_(seed) {}

void PatternGenerator::Fill(char* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (left_ == 0) {
      // splitmix64: fast, and good enough that a shifted or repeated block changes the hash.
      uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word_ = z ^ (z >> 31);
      left_ = 8;
    }
    out[i] = static_cast<char>(word_ & 0xff);
    word_ >>= 8;
    --left_;
  }
}

std::string PatternBytes(uint64_t seed, size_t n) {
  std::string s(n, '\0');
  PatternGenerator(seed).Fill(s.data(), n);
  return s;
}

std::string PatternSha256(uint64_t seed, uint64_t n) {
  PatternGenerator gen(seed);
  Sha256 h;
  std::vector<char> buf(kChunk);
  while (n > 0) {
    size_t step = static_cast<size_t>(std::min<uint64_t>(n, buf.size()));
    gen.Fill(buf.data(), step);
    h.Update(buf.data(), step);
    n -= step;
  }
  return h.FinalHex();
}

// ---------------------------------------------------------------------------------------
// Servers

bool ServerConnection::WaitFor(short events) {
  pollfd fds[2] = {{fd_, events, 0}, {stop_fd_, POLLIN, 0}};
  int r;
  do {
    r = ::poll(fds, 2, PollMs(kIdleTimeout));
  } while (r < 0 && errno == EINTR);
  if (r <= 0 || fds[1].revents != 0) return false;
  return fds[0].revents != 0;
}

bool ServerConnection::stopping() const {
  pollfd p = {stop_fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

ssize_t ServerConnection::Read(void* buf, size_t n) {
  if (!WaitFor(POLLIN)) return -1;
  ssize_t r = ::recv(fd_, buf, n, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
    if (!WaitFor(POLLIN)) return -1;
    r = ::recv(fd_, buf, n, MSG_DONTWAIT);
  }
  return r < 0 ? -1 : r;
}

bool ServerConnection::WriteAll(const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {  // each pass either makes progress or waits (bounded by kIdleTimeout)
    if (!WaitFor(POLLOUT)) return false;
    ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void ServerConnection::DrainUntilEof(milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  char buf[4096];
  while (Clock::now() < deadline) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int r = ::poll(fds, 2, PollMs(Remaining(deadline)));
    if (r <= 0 || fds[1].revents != 0) return;
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;
  }
}

bool ServerConnection::SleepUnlessStopping(milliseconds d) {
  pollfd p = {stop_fd_, POLLIN, 0};
  return ::poll(&p, 1, PollMs(d)) == 0;
}

TcpServer::TcpServer(Handler handler, uint16_t port) : handler_(std::move(handler)) {
  IgnoreSigpipe();
  listen_fd_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listen_fd_) {
    status_ = ErrnoError("server", "socket", errno);
    return;
  }
  int one = 1;
  ::setsockopt(listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    status_ = ErrnoError("server", "bind 127.0.0.1:" + std::to_string(port), errno);
    listen_fd_.Reset();
    return;
  }
  // Room for a burst of hundreds of simultaneous connects (200-at-once tests).
  if (::listen(listen_fd_.get(), 1024) != 0) {
    status_ = ErrnoError("server", "listen", errno);
    listen_fd_.Reset();
    return;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  int stop[2];
  if (::pipe2(stop, O_CLOEXEC) != 0) {
    status_ = ErrnoError("server", "pipe", errno);
    listen_fd_.Reset();
    return;
  }
  stop_read_.Reset(stop[0]);
  stop_write_.Reset(stop[1]);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

TcpServer::~TcpServer() { Stop(); }

void TcpServer::Stop() {
  std::call_once(stop_once_, [this] {
    if (stop_write_) {
      // Never read: the pipe stays readable, so every poll on it wakes up, now and later.
      ssize_t ignored = ::write(stop_write_.get(), "x", 1);
      (void)ignored;
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    listen_fd_.Reset();
    for (Worker& w : workers_) {
      if (w.thread.joinable()) w.thread.join();
    }
    workers_.clear();
  });
}

void TcpServer::JoinFinished() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->done.load()) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void TcpServer::AcceptLoop() {
  for (;;) {  // ends when Stop() writes the stop pipe
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_read_.get(), POLLIN, 0}};
    int r = ::poll(fds, 2, 100);
    if (r < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    JoinFinished();
    if (r <= 0 || fds[0].revents == 0) continue;
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(milliseconds(10));
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    accepted_.fetch_add(1);
    active_.fetch_add(1);
    Worker& w = workers_.emplace_back();
    w.thread = std::thread([this, fd, &w] {
      {
        ServerConnection conn(fd, stop_read_.get());
        handler_(conn);
      }
      ::close(fd);
      active_.fetch_sub(1);
      w.done.store(true);
    });
  }
}

EchoServer::EchoServer(uint16_t port)
    : server_(
          [](ServerConnection& conn) {
            std::vector<char> buf(kChunk);
            for (;;) {  // ends at EOF, error or server stop
              ssize_t n = conn.Read(buf.data(), buf.size());
              if (n <= 0) return;
              if (!conn.WriteAll(buf.data(), static_cast<size_t>(n))) return;
            }
          },
          port) {}

SinkServer::SinkServer(uint16_t port)
    : server_([this](ServerConnection& conn) { Serve(conn); }, port) {}

void SinkServer::Serve(ServerConnection& conn) {
  Sha256 hash;
  uint64_t count = 0;
  std::vector<char> buf(kChunk);
  for (;;) {  // ends at EOF, error or server stop
    // Paused: stop reading so the sender's window and buffers fill up.
    auto pause_deadline = Clock::now() + ServerConnection::kIdleTimeout;
    while (paused_.load() && Clock::now() < pause_deadline) {
      if (!conn.SleepUnlessStopping(milliseconds(10))) return;
    }
    ssize_t n = conn.Read(buf.data(), buf.size());
    if (n < 0) return;
    if (n == 0) break;
    hash.Update(buf.data(), static_cast<size_t>(n));
    count += static_cast<uint64_t>(n);
    bytes_received_.fetch_add(static_cast<uint64_t>(n));
  }
  SinkRecord record{count, hash.FinalHex()};
  std::string verdict = "ok " + std::to_string(count) + " " + record.sha256_hex + "\n";
  {
    // Recorded before answering: a client that has the verdict finds the record too.
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(std::move(record));
  }
  conn.WriteAll(verdict);
}

std::vector<SinkRecord> SinkServer::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

bool SinkServer::WaitForRecords(size_t count, milliseconds timeout) const {
  return WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu_);
        return records_.size() >= count;
      },
      timeout);
}

SourceServer::SourceServer(uint64_t bytes, uint64_t seed, uint16_t port)
    : bytes_(bytes), seed_(seed), server_([this](ServerConnection& conn) { Serve(conn); }, port) {}

const std::string& SourceServer::expected_sha256() {
  if (expected_.empty()) expected_ = PatternSha256(seed_, bytes_);
  return expected_;
}

void SourceServer::Serve(ServerConnection& conn) {
  PatternGenerator gen(seed_);
  std::vector<char> buf(kChunk);
  uint64_t left = bytes_;
  while (left > 0) {
    size_t step = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    gen.Fill(buf.data(), step);
    if (!conn.WriteAll(buf.data(), step)) return;
    left -= step;
  }
  ::shutdown(conn.fd(), SHUT_WR);
  // Close only after the peer's EOF: closing with unread input would send a RST, which can
  // discard our last bytes before the peer reads them.
  conn.DrainUntilEof(milliseconds(10000));
}

HttpServer::HttpServer(std::string body, uint16_t port)
    : body_(std::move(body)), server_([this](ServerConnection& conn) { Serve(conn); }, port) {}

std::vector<std::string> HttpServer::request_lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return request_lines_;
}

void HttpServer::Serve(ServerConnection& conn) {
  // A request head larger than this is not something a test sends.
  constexpr size_t kMaxHead = size_t{64} * 1024;
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < kMaxHead) {
    ssize_t n = conn.Read(buf, sizeof buf);
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  size_t eol = head.find("\r\n");
  if (eol == std::string::npos) return;
  std::string request_line = head.substr(0, eol);
  {
    std::lock_guard<std::mutex> lock(mu_);
    request_lines_.push_back(request_line);
  }
  const bool head_only = request_line.rfind("HEAD ", 0) == 0;
  std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                         std::to_string(body_.size()) + "\r\nConnection: close\r\n\r\n" +
                         (head_only ? "" : body_);
  served_.fetch_add(1);
  if (!conn.WriteAll(response)) return;
  ::shutdown(conn.fd(), SHUT_WR);
  conn.DrainUntilEof(milliseconds(2000));
}

// ---------------------------------------------------------------------------------------
// Clients

Result<UniqueFd> ConnectTcp(uint16_t port, milliseconds timeout) {
  IgnoreSigpipe();
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoError("connect", "socket", errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const std::string where = "127.0.0.1:" + std::to_string(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return ErrnoError("connect", where, errno);
    pollfd p = {fd.get(), POLLOUT, 0};
    int r = ::poll(&p, 1, PollMs(timeout));
    if (r == 0) return MakeError("connect", where + ": timed out");
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (r < 0 || err != 0) return ErrnoError("connect", where, r < 0 ? errno : err);
  }
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

namespace {

// Sends all of data before `deadline`.
Status SendBefore(int fd, const char* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {  // each pass makes progress or waits; bounded by the deadline
    pollfd pfd = {fd, POLLOUT, 0};
    int r = ::poll(&pfd, 1, PollMs(Remaining(deadline)));
    if (r == 0) return MakeError("send", "timed out with " + std::to_string(n) + " bytes unsent");
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("send", "poll", errno);
    }
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return ErrnoError("send", std::to_string(n) + " bytes unsent", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

// Reads once (waiting until `deadline`): >0 bytes, 0 at EOF, or an error.
Result<size_t> RecvBefore(int fd, char* buf, size_t n, Clock::time_point deadline) {
  for (;;) {  // retries only on EINTR/EAGAIN; bounded by the deadline
    pollfd pfd = {fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, PollMs(Remaining(deadline)));
    if (r == 0) return MakeError("receive", "timed out");
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("receive", "poll", errno);
    }
    ssize_t got = ::recv(fd, buf, n, MSG_DONTWAIT);
    if (got < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return ErrnoError("receive", "recv", errno);
    }
    return static_cast<size_t>(got);
  }
}

}  // namespace

Status SendAll(int fd, std::string_view data, milliseconds timeout) {
  return SendBefore(fd, data.data(), data.size(), Clock::now() + timeout);
}

Result<std::string> ReceiveAll(int fd, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string out;
  char buf[16384];
  for (;;) {  // bounded by the deadline
    auto n = RecvBefore(fd, buf, sizeof buf, deadline);
    if (!n.ok()) {
      Error e = n.take_error();
      e.message += " after " + std::to_string(out.size()) + " bytes";
      return e;
    }
    if (*n == 0) return out;
    out.append(buf, *n);
  }
}

Result<std::string> ReceiveUntil(int fd, std::string_view delimiter, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string out;
  char buf[4096];
  while (out.find(delimiter) == std::string::npos) {  // bounded by the deadline
    auto n = RecvBefore(fd, buf, sizeof buf, deadline);
    if (!n.ok()) return n.take_error();
    if (*n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

Result<TransferSummary> SendAllAndHash(int fd, uint64_t bytes, uint64_t seed,
                                       milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  PatternGenerator gen(seed);
  Sha256 hash;
  std::vector<char> buf(kChunk);
  uint64_t left = bytes;
  while (left > 0) {
    size_t step = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    gen.Fill(buf.data(), step);
    hash.Update(buf.data(), step);
    Status s = SendBefore(fd, buf.data(), step, deadline);
    if (!s.ok()) {
      Error e = s.take_error();
      e.message +=
          " (" + std::to_string(bytes - left) + " of " + std::to_string(bytes) + " bytes sent)";
      return e;
    }
    left -= step;
  }
  return TransferSummary{bytes, hash.FinalHex()};
}

Result<TransferSummary> ReceiveAllAndHash(int fd, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  Sha256 hash;
  uint64_t count = 0;
  std::vector<char> buf(kChunk);
  for (;;) {  // bounded by the deadline
    auto n = RecvBefore(fd, buf.data(), buf.size(), deadline);
    if (!n.ok()) {
      Error e = n.take_error();
      e.message += " after " + std::to_string(count) + " bytes";
      return e;
    }
    if (*n == 0) break;
    hash.Update(buf.data(), *n);
    count += *n;
  }
  return TransferSummary{count, hash.FinalHex()};
}

Result<TransferSummary> SendToSink(uint16_t port, uint64_t bytes, uint64_t seed,
                                   milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto fd = ConnectTcp(port, Remaining(deadline));
  if (!fd.ok()) return fd.take_error();
  auto sent = SendAllAndHash(fd->get(), bytes, seed, Remaining(deadline));
  if (!sent.ok()) return sent.take_error();
  if (::shutdown(fd->get(), SHUT_WR) != 0) return ErrnoError("sink", "shutdown", errno);
  auto reply = ReceiveAll(fd->get(), Remaining(deadline));
  if (!reply.ok()) return reply.take_error();
  std::istringstream in(*reply);
  std::string ok, hex;
  uint64_t count = 0;
  if (!(in >> ok >> count >> hex) || ok != "ok") {
    return MakeError("sink", "no verdict after sending " + std::to_string(bytes) + " bytes; got '" +
                                 *reply + "'");
  }
  if (count != sent->bytes || hex != sent->sha256_hex) {
    return MakeError("sink", "sent " + std::to_string(sent->bytes) + " bytes sha256 " +
                                 sent->sha256_hex + ", sink saw " + std::to_string(count) +
                                 " bytes sha256 " + hex);
  }
  return *sent;
}

Result<TransferSummary> ReadFromSource(uint16_t port, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto fd = ConnectTcp(port, Remaining(deadline));
  if (!fd.ok()) return fd.take_error();
  return ReceiveAllAndHash(fd->get(), Remaining(deadline));
}

Result<std::string> EchoRoundTrip(uint16_t port, std::string_view data, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto conn = ConnectTcp(port, Remaining(deadline));
  if (!conn.ok()) return conn.take_error();
  const int fd = conn->get();
  // Send and receive at once: an echo peer stops reading while we do not read.
  size_t sent = 0;
  bool shut = false;
  std::string out;
  char buf[16384];
  for (;;) {  // bounded by the deadline
    if (sent == data.size() && !shut) {
      ::shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd pfd = {fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    int r = ::poll(&pfd, 1, PollMs(Remaining(deadline)));
    if (r == 0) {
      return MakeError("echo", "timed out: sent " + std::to_string(sent) + " of " +
                                   std::to_string(data.size()) + ", got " +
                                   std::to_string(out.size()) + " bytes");
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("echo", "poll", errno);
    }
    if (!shut && (pfd.revents & POLLOUT)) {
      ssize_t w = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EINTR) return ErrnoError("echo", "send", errno);
      if (w > 0) sent += static_cast<size_t>(w);
    }
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0) break;
      if (n < 0 && errno != EAGAIN && errno != EINTR) return ErrnoError("echo", "recv", errno);
      if (n > 0) out.append(buf, static_cast<size_t>(n));
    }
  }
  if (sent != data.size()) {
    return MakeError("echo", "peer closed after " + std::to_string(sent) + " of " +
                                 std::to_string(data.size()) + " bytes");
  }
  return out;
}

Result<HttpResponse> HttpGet(uint16_t port, std::string_view path, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto fd = ConnectTcp(port, Remaining(deadline));
  if (!fd.ok()) return fd.take_error();
  std::string request = "GET " + std::string(path) +
                        " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n\r\n";
  Status s = SendAll(fd->get(), request, Remaining(deadline));
  if (!s.ok()) return s.take_error();
  auto raw = ReceiveAll(fd->get(), Remaining(deadline));
  if (!raw.ok()) return raw.take_error();
  size_t split = raw->find("\r\n\r\n");
  if (split == std::string::npos) return MakeError("http", "no response head in '" + *raw + "'");
  HttpResponse response;
  response.headers = raw->substr(0, split + 2);
  response.body = raw->substr(split + 4);
  std::istringstream in(response.headers);
  std::string version;
  if (!(in >> version >> response.status)) {
    return MakeError("http", "bad status line in '" + response.headers + "'");
  }
  return response;
}

// ---------------------------------------------------------------------------------------
// The tether binary

const char* TetherBinary() {
  // TETHER_E2E_BIN runs the suite against another build of tether (a sanitizer build's)
  // without building the tests there too.
  static const char* const binary = [] {
    const char* other = std::getenv("TETHER_E2E_BIN");
    return other != nullptr && *other != '\0' ? other : TETHER_BIN;
  }();
  return binary;
}

Result<std::string> GitPushAndClone(const std::string& dir, const std::string& ssh_command,
                                    const Env& extra_env) {
  const std::string repo = dir + "/repo.git";
  const std::string work = dir + "/work";
  const std::string clone = dir + "/clone";
  Env env = extra_env;
  env["GIT_SSH_COMMAND"] = ssh_command;
  env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "t";
  env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "t@example.org";
  const std::vector<std::vector<std::string>> steps = {
      {"git", "init", "-q", "--bare", repo},
      {"git", "init", "-q", work},
      {"git", "-C", work, "add", "README"},
      {"git", "-C", work, "commit", "-q", "-m", "one"},
      {"git", "-C", work, "push", "-q", "testhost:" + repo, "HEAD:main"},
      {"git", "clone", "-q", "-b", "main", "testhost:" + repo, clone}};
  for (size_t i = 0; i < steps.size(); ++i) {
    if (i == 2) {
      Status written = WriteFile(work + "/README", "hello\n");
      if (!written.ok()) return written.take_error();
    }
    CommandResult r = RunCommand(steps[i], env, std::chrono::seconds(60));
    if (!r.ok()) return MakeError("git", steps[i][1] + ": " + r.Describe());
  }
  return ReadFile(clone + "/README");
}

CommandResult RunTether(const std::string& state_dir, const std::vector<std::string>& args,
                        milliseconds timeout, const Env& extra_env, std::string_view stdin_data) {
  std::vector<std::string> argv = {TetherBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  Env env = extra_env;
  env["TETHER_STATE_DIR"] = state_dir;
  return RunCommand(argv, env, timeout, stdin_data);
}

std::vector<pid_t> StopAllTethers(const std::string& state_dir) {
  // Read the pid files first: `down` removes the files of daemons it finds dead or
  // stale, and a daemon wedged without its lock would then be forgotten.
  std::vector<pid_t> named;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir, ec)) {
    if (entry.path().extension() != ".pid") continue;
    auto text = ReadFile(entry.path().string());
    if (!text.ok()) continue;
    long pid = std::strtol(text->c_str(), nullptr, 10);
    if (pid > 1 && pid != ::getpid()) named.push_back(static_cast<pid_t>(pid));
  }
  (void)RunTether(state_dir, {"down", "--all"}, std::chrono::seconds(15));
  std::vector<pid_t> killed;
  for (pid_t pid : named) {
    if (!ProcessAlive(pid)) continue;
    TerminatePid(pid, milliseconds(3000));
    killed.push_back(pid);
  }
  return killed;
}

OtherAccount::OtherAccount() {
  static std::atomic<int> counter{0};
  name_ = "tether-other-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  // useradd takes a lock on the account files; tests side by side may meet there.
  CommandResult r;
  for (int attempt = 0; attempt < 20; ++attempt) {
    r = RunCommand({"useradd", "--system", "--no-create-home", "--user-group", "--shell",
                    "/usr/sbin/nologin", name_},
                   {}, std::chrono::seconds(10));
    if (r.ok()) break;
    std::this_thread::sleep_for(milliseconds(100 + 50 * attempt));
  }
  if (!r.ok()) {
    error_ = "useradd " + name_ + ": " + r.Describe();
    return;
  }
  struct passwd* pw = ::getpwnam(name_.c_str());
  if (pw == nullptr || pw->pw_uid == 0) {
    error_ = "no uid for " + name_;
    return;
  }
  uid_ = pw->pw_uid;
  gid_ = pw->pw_gid;
}

OtherAccount::~OtherAccount() {
  if (name_.empty()) return;
  for (int attempt = 0; attempt < 20; ++attempt) {
    CommandResult r = RunCommand({"userdel", name_}, {}, std::chrono::seconds(10));
    // 6: no such user (useradd failed): nothing to remove.
    if (r.ok() || r.exit_code == 6) return;
    std::this_thread::sleep_for(milliseconds(100 + 50 * attempt));
  }
}

std::vector<std::string> OtherAccount::As(const std::vector<std::string>& argv) const {
  std::vector<std::string> full = {"setpriv", "--reuid=" + std::to_string(uid_),
                                   "--regid=" + std::to_string(gid_), "--clear-groups", "--"};
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}

std::vector<std::string> OtherAccount::Catcher(const std::vector<uint16_t>& ports) const {
  std::vector<std::string> argv = {
      "/usr/bin/python3", "-c",
      "import socket, sys, threading\n"
      "def serve(s):\n"
      "    while True:\n"
      "        c, _ = s.accept()\n"
      "        c.settimeout(2)\n"
      "        try:\n"
      "            while (b := c.recv(65536)):\n"
      "                sys.stdout.write(repr(b)); sys.stdout.flush()\n"
      "        except OSError:\n"
      "            pass\n"
      "        c.close()\n"
      "socks = []\n"
      "for port in sys.argv[1:]:\n"
      "    s = socket.socket()\n"
      "    s.bind(('127.0.0.1', int(port)))\n"
      "    s.listen(16)\n"
      "    socks.append(s)\n"
      "for s in socks[1:]:\n"
      "    threading.Thread(target=serve, args=(s,), daemon=True).start()\n"
      "serve(socks[0])\n"};
  for (uint16_t port : ports) argv.push_back(std::to_string(port));
  return As(argv);
}

CommandResult OtherAccount::Run(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout) const {
  return RunCommand(As(argv), {}, timeout);
}

}  // namespace tether::testing
