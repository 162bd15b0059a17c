#include "agent/run.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "agent/collector.h"
#include "agent/lease.h"
#include "agent/listen.h"
#include "agent/log.h"
#include "agent/runtime_dir.h"
#include "agent/server.h"
#include "agent/token.h"
#include "common/fs.h"
#include "common/text.h"
#include "common/unique_fd.h"

namespace tether::agent {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// How often the main thread, waiting for a signal, checks that the server still runs.
constexpr timespec kSignalWaitSlice = {1, 0};
constexpr double kMillisPerHour = 3600.0 * 1000.0;

int Fail(const Error& e) {
  std::fprintf(stderr, "tether-agent: %s\n", e.ToString().c_str());
  return kExitFailure;
}

// Daemonizing changes directory to /, so relative paths are made absolute first.
std::string Absolute(const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  char cwd[4096];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

Status MakeParents(const std::string& path) {
  std::string failed;
  if (int err = MakeParentDirs(path, &failed)) {
    return ErrnoError("daemon", "cannot create " + failed, err);
  }
  return Status::Ok();
}

Status WritePidFile(const std::string& path, pid_t pid) {
  std::string failed;
  if (int err = WriteFileAtomically(path, std::to_string(pid) + "\n", 0644, &failed)) {
    return ErrnoError("pid file", "cannot write " + failed, err);
  }
  return Status::Ok();
}

// Removes the pid file only while it still names us: a newer agent may have replaced it.
void RemovePidFile(const std::string& path) {
  if (path.empty()) return;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return;
  char buf[32] = {};
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n > 0 && ParseInt(Trim(std::string_view(buf, static_cast<size_t>(n)))) == ::getpid()) {
    ::unlink(path.c_str());
  }
}

// Forks after the port is bound, so a failure to bind is reported by the command the
// installer ran, and it returns only once the agent is listening. Returns true in the
// child; the parent exits here.
Result<bool> Daemonize(const std::string& log_path, const std::string& pid_file,
                       const std::string& where) {
  Status dirs = MakeParents(log_path);
  if (!dirs) return dirs.take_error();
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log) return ErrnoError("daemon", "cannot open log " + log_path, errno);
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null) return ErrnoError("daemon", "cannot open /dev/null", errno);

  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("daemon", "fork", errno);
  if (pid > 0) {
    int rc = 0;
    if (!pid_file.empty()) {
      Status written = WritePidFile(pid_file, pid);
      if (!written) rc = Fail(written.error());
    }
    std::printf("tether-agent: listening on %s, pid %d, log %s\n", where.c_str(),
                static_cast<int>(pid), log_path.c_str());
    std::fflush(stdout);
    ::_exit(rc);
  }
  ::setsid();
  if (::chdir("/") != 0) {
    // Keeping the old directory only pins a mount; not worth failing for.
  }
  ::dup2(null.get(), STDIN_FILENO);
  ::dup2(log.get(), STDOUT_FILENO);
  ::dup2(log.get(), STDERR_FILENO);
  return true;
}

// The directory of a socket to bind again: checked (and made) as at start.
Status ResocketDir(const std::string& socket_path, bool chosen) {
  if (chosen) return CheckSocketParent(socket_path, ::geteuid());
  return CheckPrivateDir(socket_path.substr(0, socket_path.rfind('/')), ::geteuid(), true);
}

// close_range(2) came with Linux 5.9; RHEL 8 has 4.18: there, one close a descriptor.
void CloseInheritedDescriptors() {
  if (::close_range(3, ~0U, 0) == 0) return;
  long max = ::sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > (1 << 20)) max = 1 << 20;
  for (int fd = 3; fd < max; ++fd) ::close(fd);
}

std::string DescribeLease(const AgentOptions& o) {
  if (o.lease_command.empty()) return "lease off";
  if (!o.lease_hours) return "lease armed by the first POST /extend";
  char hours[32];
  std::snprintf(hours, sizeof hours, "%g", *o.lease_hours);
  return std::string("lease ") + hours + " h";
}

}  // namespace

std::string DefaultLogPath() {
  auto home = AgentHomeDir();
  return (home ? *home : std::string("/")) + "/.local/state/tether/agent.log";
}

int RunAgent(const AgentOptions& o, const std::string& version) {
  // Options first: nothing is created on disk for a command line that cannot work.
  if (o.lease_hours && o.lease_command.empty()) {
    std::fprintf(stderr, "tether-agent: --lease-hours needs --lease-command\n");
    return kExitUsage;
  }
  std::optional<std::chrono::milliseconds> initial_lease;
  if (o.lease_hours) {
    const double max_hours = static_cast<double>(
        std::chrono::duration_cast<std::chrono::hours>(Lease::kMaxRemaining).count());
    if (!std::isfinite(*o.lease_hours) || *o.lease_hours <= 0 || *o.lease_hours > max_hours) {
      std::fprintf(stderr, "tether-agent: --lease-hours must be more than 0 and at most %g\n",
                   max_hours);
      return kExitUsage;
    }
    initial_lease = std::chrono::milliseconds(std::llround(*o.lease_hours * kMillisPerHour));
  }
  if (!o.listen.empty() && !o.socket.empty()) {
    std::fprintf(stderr, "tether-agent: --listen and --socket exclude each other\n");
    return kExitUsage;
  }
  std::optional<ListenAddress> listen;
  if (!o.listen.empty()) {
    auto parsed = ParseListenAddress(o.listen);
    if (!parsed) {
      std::fprintf(stderr, "tether-agent: %s\n", parsed.error().ToString().c_str());
      return kExitUsage;
    }
    listen = *parsed;
  }
  // The socket's path, its directory checked (and made) before anything listens there.
  std::string socket_path;
  if (!listen) {
    if (!o.socket.empty()) {
      socket_path = Absolute(o.socket);
      Status parent = CheckSocketParent(socket_path, ::geteuid());
      if (!parent) return Fail(parent.error());
    } else {
      auto dir = ResolveRuntimeDir(CurrentRuntimeDirInputs());
      if (!dir) return Fail(dir.error());
      socket_path = *dir + "/" + std::string(kSocketName);
    }
  }
  if (o.print_socket) {
    if (socket_path.empty()) {
      std::fprintf(stderr, "tether-agent: --print-socket: this agent would listen on TCP\n");
      return kExitUsage;
    }
    std::printf("%s\n", socket_path.c_str());
    return 0;
  }

  if (o.daemon) {
    // Whatever descriptors the starting shell left open (an ssh session's pipes, say) are
    // not ours to keep: held by a daemon, they would keep the installer's ssh command
    // from ever finishing. Nothing of our own is open yet.
    CloseInheritedDescriptors();
  }

  const std::string token_path = o.token_file.empty() ? DefaultTokenPath() : o.token_file;
  auto token = LoadOrCreateToken(token_path);
  if (!token) return Fail(token.error());
  if (o.print_token) {
    std::printf("%s\n", token->c_str());
    return 0;
  }

  // Before any thread exists, so every thread inherits it: these signals are taken by
  // sigtimedwait below, never delivered to a worker in the middle of a request.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop_signals, sig);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a client that went away is a failed write, not our death

  CollectorConfig collector_config;
  if (auto home = AgentHomeDir()) collector_config.disk_paths.push_back(*home);
  for (const std::string& dir : o.work_dirs) {
    std::string abs = Absolute(dir);
    if (std::find(collector_config.disk_paths.begin(), collector_config.disk_paths.end(), abs) ==
        collector_config.disk_paths.end()) {
      collector_config.disk_paths.push_back(abs);
    }
  }
  collector_config.nvidia_smi = o.nvidia_smi;
  Collector collector(collector_config);

  LeaseConfig lease_config;
  lease_config.command = o.lease_command;
  lease_config.initial = initial_lease;
  LeaseKeeper lease(lease_config, Log);

  ServerConfig server_config;
  server_config.socket_path = socket_path;
  if (listen) {
    server_config.host = listen->host;
    server_config.port = listen->port;
  }
  server_config.token = *token;
  server_config.version = version;
  AgentServer server(
      std::move(server_config), [&collector] { return collector.Collect(); }, lease);
  auto port = server.Bind();
  if (!port) return Fail(port.error());
  const std::string where =
      !listen ? "unix:" + socket_path
              : (listen->host.find(':') != std::string::npos ? "[" + listen->host + "]"
                                                             : listen->host) +
                    ":" + std::to_string(*port);

  const std::string pid_file = Absolute(o.pid_file);
  if (o.daemon) {
    auto child =
        Daemonize(Absolute(o.log_file.empty() ? DefaultLogPath() : o.log_file), pid_file, where);
    if (!child) return Fail(child.error());
  } else if (!pid_file.empty()) {
    Status written = WritePidFile(pid_file, ::getpid());
    if (!written) return Fail(written.error());
  }

  Log("tether-agent " + version + " listening on " + where + ", pid " + std::to_string(::getpid()) +
      ", token file " + token_path + ", " + DescribeLease(o));
  if (listen && !IsLoopbackHost(listen->host)) {
    Log("warning: " + listen->host +
        " is not a loopback address: the token crosses the network in clear HTTP");
  }
  lease.Start();

  std::atomic<bool> served{false};
  Status serve_status;
  std::thread serve_thread([&] {
    serve_status = server.Serve();
    served = true;
  });
  int signal_number = 0;
  bool socket_lost = false;
  while (!served && signal_number <= 0) {
    signal_number = ::sigtimedwait(&stop_signals, nullptr, &kSignalWaitSlice);
    if (signal_number <= 0 && server.SocketGone()) {
      // Its directory first: the runtime directory comes back with the next login.
      Status again = ResocketDir(socket_path, !o.socket.empty());
      if (again) again = server.Rebind();
      if (again) {
        Log("the socket file was removed; listening again on unix:" + socket_path);
        socket_lost = false;
      } else if (again.error().sys_errno == EADDRINUSE) {
        // A newer agent took the path over: it is the one the laptop now reaches.
        Log("another agent listens on unix:" + socket_path + " now: stopping");
        break;
      } else if (!socket_lost) {
        Log("the socket file was removed and cannot be made again yet (" +
            again.error().ToString() + "); trying every second");
        socket_lost = true;
      }
    }
  }
  if (signal_number > 0) Log(std::string("stopping on ") + ::strsignal(signal_number));
  server.Stop();
  serve_thread.join();
  lease.Stop();
  RemovePidFile(pid_file);
  if (!serve_status) {
    Log(serve_status.error().ToString());
    return kExitFailure;
  }
  return 0;
}

}  // namespace tether::agent
