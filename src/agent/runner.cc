#include "agent/runner.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <list>
#include <string>
#include <vector>

#include "agent/listener.h"
#include "agent/runtime_dir.h"
#include "agent/token.h"
#include "common/runner_wire.h"
#include "common/unique_fd.h"

extern char** environ;

namespace tether::agent {
namespace {

using runner::Frame;

// Commands at once; past it the daemon is told to use a session (sshd's own limits then
// apply, as without the runner).
constexpr size_t kMaxCommands = 256;
// What waits for a slow reader at most, per direction, before the other side is no
// longer read: the backpressure that keeps the runner small whatever a command prints.
constexpr size_t kMaxPending = 256u << 10;

// The startup files whose change makes the captured environment stale.
constexpr std::array<const char*, 7> kRcFiles = {
    ".profile", ".bashrc", ".bash_profile", ".bash_login", ".zshrc", ".zshenv", ".zprofile"};

int g_child_pipe = -1;  // written by the SIGCHLD handler

void OnChild(int) {
  const int saved = errno;
  char c = 0;
  (void)::write(g_child_pipe, &c, 1);
  errno = saved;
}

struct Stamp {
  bool exists = false;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{}, ctime{};
  bool operator==(const Stamp& o) const {
    return exists == o.exists && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
           ctime.tv_nsec == o.ctime.tv_nsec;
  }
};

std::vector<Stamp> RcStamps(const std::string& home) {
  std::vector<Stamp> out;
  for (const char* name : kRcFiles) {
    struct stat st {};
    Stamp s;
    // stat, not lstat: a dotfile manager's symlink changes when its target does.
    if (::stat((home + "/" + name).c_str(), &st) == 0) {
      s.exists = true;
      s.ino = st.st_ino;
      s.size = st.st_size;
      s.mtime = st.st_mtim;
      s.ctime = st.st_ctim;
    }
    out.push_back(s);
  }
  return out;
}

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

bool WouldBlock() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

struct Command {
  UniqueFd sock;
  runner::FrameReader reader;
  std::string to_sock;
  pid_t pid = -1;  // before kRun: -1
  UniqueFd in, out, err;
  std::string to_in;
  bool in_eof_asked = false;
  bool out_eof = false, err_eof = false;
  bool exited = false;
  int wait_status = 0;
  bool exit_queued = false;
  bool gone = false;  // the client went away, or spoke nonsense: erase
};

class Runner {
 public:
  Runner(UniqueFd listener, std::string path, struct stat file, std::string home, std::string shell)
      : dir_(CurrentDir()),
        listener_(std::move(listener)),
        path_(std::move(path)),
        file_(file),
        home_(std::move(home)),
        shell_(std::move(shell)),
        stamps_(RcStamps(home_)) {
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::strncmp(*e, "SHLVL=", 6) != 0) env_.emplace_back(*e);
    }
    // What the rc files did is in this environment already; a shell must not do it again
    // for every command. bash reads ~/.bashrc for a command when SSH_CLIENT is set and it
    // is the first shell level (the `exec` that started us gave back sshd's level, 0):
    // one level down it does not, and the variables sshd set stay as they are.
    env_.emplace_back("SHLVL=1");
  }

  int Run(int child_pipe) {
    SetNonBlocking(STDIN_FILENO);
    bool stdin_open = true;
    for (;;) {
      if (stopping_ && commands_.empty()) break;
      std::vector<pollfd> fds;
      std::vector<std::pair<Command*, int>>
          who;  // per pollfd: command and which (0 sock,1 in,2 out,3 err)
      fds.push_back({child_pipe, POLLIN, 0});
      who.push_back({nullptr, 0});
      if (stdin_open) {
        fds.push_back({STDIN_FILENO, POLLIN, 0});
        who.push_back({nullptr, 1});
      }
      if (listener_) {
        fds.push_back({listener_.get(), POLLIN, 0});
        who.push_back({nullptr, 2});
      }
      for (Command& c : commands_) {
        short sock_events = 0;
        if (c.to_in.size() < kMaxPending && !c.in_eof_asked) sock_events |= POLLIN;
        if (c.pid < 0) sock_events |= POLLIN;
        if (!c.to_sock.empty()) sock_events |= POLLOUT;
        fds.push_back({c.sock.get(), sock_events, 0});
        who.push_back({&c, 0});
        if (c.in && !c.to_in.empty()) {
          fds.push_back({c.in.get(), POLLOUT, 0});
          who.push_back({&c, 1});
        }
        if (c.to_sock.size() < kMaxPending) {
          if (c.out) {
            fds.push_back({c.out.get(), POLLIN, 0});
            who.push_back({&c, 2});
          }
          if (c.err) {
            fds.push_back({c.err.get(), POLLIN, 0});
            who.push_back({&c, 3});
          }
        }
      }
      int n = ::poll(fds.data(), fds.size(), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("tether-runner: poll");
        return 1;
      }
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        auto [c, which] = who[i];
        if (c == nullptr) {
          if (which == 0) Reap(child_pipe);
          if (which == 1 && StdinClosed()) {
            stdin_open = false;
            Stop("its session ended");
          }
          if (which == 2) Accept();
          continue;
        }
        if (c->gone) continue;
        if (which == 0) {
          if (fds[i].revents & POLLOUT) FlushSock(*c);
          if (fds[i].revents & POLLIN) ReadSock(*c);
          // Closed by the peer: it went away, whatever stdin it had not sent yet.
          if (!c->gone && (fds[i].revents & (POLLHUP | POLLERR))) Gone(*c);
        } else if (which == 1) {
          FlushIn(*c);
        } else {
          ReadOutput(*c, which == 3);
        }
      }
      for (Command& c : commands_) Advance(c);
      commands_.remove_if([](const Command& c) { return c.gone; });
    }
    return 0;
  }

  void Stop(const char* why) {
    if (stopping_) return;
    stopping_ = true;
    if (listener_) {
      RemoveUnixSocket(path_, file_);
      listener_.Reset();
    }
    std::fprintf(stderr, "tether-runner: stopping: %s\n", why);
  }

 private:
  bool StdinClosed() {
    char buf[256];
    for (;;) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) continue;  // nothing is said on stdin: ignored
      return !(n < 0 && WouldBlock());
    }
  }

  void Accept() {
    for (;;) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;
      UniqueFd sock(fd);
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != ::getuid()) {
        continue;  // another account: closed unread
      }
      Command c;
      c.sock = std::move(sock);
      commands_.push_back(std::move(c));
    }
  }

  void Gone(Command& c) {
    if (c.pid > 0 && !c.exited) ::kill(-c.pid, SIGHUP);  // as sshd's hang-up
    c.gone = true;
  }

  void ReadSock(Command& c) {
    char buf[65536];
    for (int round = 0; round < 16; ++round) {
      if (c.to_in.size() >= kMaxPending && c.pid >= 0) break;
      ssize_t n = ::recv(c.sock.get(), buf, sizeof buf, 0);
      if (n < 0 && WouldBlock()) break;
      if (n <= 0) return Gone(c);
      c.reader.Feed(buf, static_cast<size_t>(n));
      Frame type;
      std::string payload;
      for (;;) {
        auto r = c.reader.Next(&type, &payload);
        if (r == runner::FrameReader::Result::kNeedMore) break;
        if (r == runner::FrameReader::Result::kBroken) return Gone(c);
        if (!OnFrame(c, type, payload)) return Gone(c);
      }
    }
  }

  bool OnFrame(Command& c, Frame type, std::string& payload) {
    if (c.pid < 0) {
      if (type != Frame::kRun) return false;
      auto request = runner::DecodeRun(payload);
      if (!request) return false;
      return Start(c, *request);
    }
    if (c.in_eof_asked) return false;  // nothing after EOF
    if (type == Frame::kStdin) {
      if (c.in) c.to_in += payload;  // a closed stdin (the command shut it) drops it
      return true;
    }
    if (type == Frame::kStdinEof) {
      c.in_eof_asked = true;
      return true;
    }
    return false;
  }

  void Refuse(Command& c, const std::string& why) {
    runner::AppendFrame(c.to_sock, Frame::kRefused, why);
    c.pid = 0;  // no process; closed once said
    c.exited = c.out_eof = c.err_eof = true;
    c.exit_queued = true;
  }

  bool Start(Command& c, const runner::RunRequest& request) {
    if (stopping_) {
      Refuse(c, "the runner is stopping");
      return true;
    }
    if (RcStamps(home_) != stamps_) {
      Refuse(c, "the shell's startup files changed; the runner starts again");
      Stop("the shell's startup files changed");
      std::printf("tether-runner: restart: startup files changed\n");
      std::fflush(stdout);
      return true;
    }
    if (commands_.size() > kMaxCommands) {
      Refuse(c, "too many commands at once");
      return true;
    }
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0) {
      Refuse(c, std::string("pipe: ") + std::strerror(errno));
      return true;
    }
    if (::pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      Refuse(c, std::string("pipe: ") + std::strerror(errno));
      return true;
    }
    if (::pipe2(err, O_CLOEXEC) != 0) {
      for (int fd : {in[0], in[1], out[0], out[1]}) ::close(fd);
      Refuse(c, std::string("pipe: ") + std::strerror(errno));
      return true;
    }
    // Everything the child needs is made before the fork.
    std::vector<std::string> env = env_;
    for (const auto& var : request.env) {
      const std::string name = var.substr(0, var.find('=') + 1);
      std::erase_if(env, [&](const std::string& e) { return e.rfind(name, 0) == 0; });
      env.push_back(var);
    }
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string base = shell_.substr(shell_.rfind('/') + 1);
    std::string dash_c = "-c";
    std::string command = request.command;
    char* argv[] = {base.data(), dash_c.data(), command.data(), nullptr};

    pid_t pid = ::fork();
    if (pid < 0) {
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
      Refuse(c, std::string("fork: ") + std::strerror(errno));
      return true;
    }
    if (pid == 0) {
      ::setsid();
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int s : {SIGPIPE, SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGQUIT})
        ::sigaction(s, &dfl, nullptr);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      // Where sshd put the runner, and would put the command: the home directory.
      if (::chdir(dir_.c_str()) != 0) (void)::chdir("/");
      ::execve(shell_.c_str(), argv, envp.data());
      const std::string failed = shell_ + ": " + std::strerror(errno) + "\n";
      (void)::write(2, failed.data(), failed.size());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    c.in = UniqueFd(in[1]);
    c.out = UniqueFd(out[0]);
    c.err = UniqueFd(err[0]);
    SetNonBlocking(c.in.get());
    SetNonBlocking(c.out.get());
    SetNonBlocking(c.err.get());
    c.pid = pid;
    runner::AppendFrame(c.to_sock, Frame::kStarted, std::to_string(pid));
    return true;
  }

  void FlushIn(Command& c) {
    while (c.in && !c.to_in.empty()) {
      ssize_t n = ::write(c.in.get(), c.to_in.data(), c.to_in.size());
      if (n < 0 && WouldBlock()) return;
      if (n <= 0) {
        // The command closed its stdin: what comes for it is dropped, as sshd does.
        c.to_in.clear();
        c.in.Reset();
        return;
      }
      c.to_in.erase(0, static_cast<size_t>(n));
    }
  }

  void ReadOutput(Command& c, bool is_stderr) {
    UniqueFd& fd = is_stderr ? c.err : c.out;
    char buf[runner::kMaxDataFrame];
    while (fd && c.to_sock.size() < kMaxPending) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0 && WouldBlock()) return;
      if (n <= 0) {
        fd.Reset();
        (is_stderr ? c.err_eof : c.out_eof) = true;
        return;
      }
      runner::AppendFrame(c.to_sock, is_stderr ? Frame::kStderr : Frame::kStdout,
                          std::string_view(buf, static_cast<size_t>(n)));
    }
  }

  void FlushSock(Command& c) {
    while (!c.to_sock.empty()) {
      ssize_t n = ::send(c.sock.get(), c.to_sock.data(), c.to_sock.size(), MSG_NOSIGNAL);
      if (n < 0 && WouldBlock()) return;
      if (n <= 0) return Gone(c);
      c.to_sock.erase(0, static_cast<size_t>(n));
    }
  }

  void Advance(Command& c) {
    if (c.gone) return;
    FlushIn(c);
    if (c.in_eof_asked && c.to_in.empty() && c.in) c.in.Reset();  // the command's EOF
    if (!c.exit_queued && c.exited && c.out_eof && c.err_eof) {
      runner::AppendFrame(c.to_sock, Frame::kExit,
                          runner::EncodeExit(runner::ExitValueOf(c.wait_status)));
      c.exit_queued = true;
    }
    FlushSock(c);
    if (!c.gone && c.exit_queued && c.to_sock.empty()) c.gone = true;  // all said: close
  }

  void Reap(int child_pipe) {
    char buf[64];
    while (::read(child_pipe, buf, sizeof buf) > 0) {
    }
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      for (Command& c : commands_) {
        if (c.pid == pid) {
          c.exited = true;
          c.wait_status = status;
        }
      }
    }
  }

  static std::string CurrentDir() {
    char buf[4096];
    return ::getcwd(buf, sizeof buf) != nullptr ? std::string(buf) : std::string("/");
  }

  const std::string dir_;
  UniqueFd listener_;
  std::string path_;
  struct stat file_;
  std::string home_;
  std::string shell_;
  std::vector<Stamp> stamps_;
  std::vector<std::string> env_;
  std::list<Command> commands_;
  bool stopping_ = false;
};

// Sockets of runners that died without removing theirs: a connect is refused.
void RemoveDeadSockets(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("runner-", 0) != 0 || name.size() < 5 ||
        name.compare(name.size() - 5, 5, ".sock") != 0) {
      continue;
    }
    std::string path = dir + "/" + name;
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) continue;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
        errno == ECONNREFUSED) {
      ::unlink(path.c_str());
    }
  }
  ::closedir(d);
}

}  // namespace

int RunRunner(const RunnerOptions& options) {
  auto home = AgentHomeDir();
  if (!home.ok()) {
    std::fprintf(stderr, "tether-runner: %s\n", home.error().ToString().c_str());
    return 1;
  }
  std::string path = options.socket;
  const uid_t uid = ::getuid();
  if (path.empty()) {
    auto dir = ResolveRuntimeDir(CurrentRuntimeDirInputs());
    if (!dir.ok()) {
      std::fprintf(stderr, "tether-runner: %s\n", dir.error().ToString().c_str());
      return 1;
    }
    RemoveDeadSockets(*dir);
    auto name = GenerateToken();
    if (!name.ok()) {
      std::fprintf(stderr, "tether-runner: %s\n", name.error().ToString().c_str());
      return 1;
    }
    path = *dir + "/runner-" + name->substr(0, 16) + ".sock";
  } else if (auto parent = CheckSocketParent(path, uid); !parent.ok()) {
    std::fprintf(stderr, "tether-runner: %s\n", parent.error().ToString().c_str());
    return 1;
  }
  struct stat file {};
  auto listener = ListenUnix(path, uid, &file);
  if (!listener.ok()) {
    std::fprintf(stderr, "tether-runner: %s\n", listener.error().ToString().c_str());
    return 1;
  }
  SetNonBlocking(listener->get());
  // The user's shell, as sshd runs commands with it ($SHELL is what sshd set from the
  // account's entry).
  const char* shell = std::getenv("SHELL");
  std::string shell_path = shell != nullptr && *shell == '/' ? shell : "/bin/sh";

  int child_pipe[2];
  if (::pipe2(child_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    std::perror("tether-runner: pipe");
    RemoveUnixSocket(path, file);
    return 1;
  }
  g_child_pipe = child_pipe[1];
  struct sigaction sa {};
  sa.sa_handler = OnChild;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  ::sigaction(SIGCHLD, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Runner r(std::move(*listener), path, file, *home, shell_path);
  std::printf("%s %d %s\n", std::string(runner::kGreeting).c_str(), runner::kProtocolVersion,
              path.c_str());
  std::fflush(stdout);
  int rc = r.Run(child_pipe[0]);
  r.Stop("done");
  return rc;
}

}  // namespace tether::agent
