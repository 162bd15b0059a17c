#include "daemon/state_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "common/fs.h"

namespace tether::daemon {
namespace {

pid_t ReadPid(int fd) {
  char buf[32] = {0};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  return static_cast<pid_t>(std::strtol(buf, nullptr, 10));
}

}  // namespace

std::string FileNameFor(const std::string& host) {
  std::string out;
  for (char c : host) {
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-' || c == '@';
    out.push_back(keep ? c : '_');
  }
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

Result<StateDir> StateDir::Open() {
  std::string path;
  if (const char* dir = ::getenv("TETHER_STATE_DIR"); dir != nullptr && *dir != '\0') {
    path = dir;
  } else if (const char* xdg = ::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
    path = std::string(xdg) + "/tether";
  } else {
    path = HomeDir() + "/.local/state/tether";
  }
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  std::string failed;
  if (int err = MakeDirs(path, &failed)) return ErrnoError("state", "cannot create " + failed, err);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("state", "cannot stat " + path, errno);
  if (!S_ISDIR(st.st_mode)) return MakeError("state", path + " is not a directory");
  if (st.st_uid != ::geteuid()) {
    return MakeError("state", path + " belongs to another user",
                     "set TETHER_STATE_DIR to a directory of your own");
  }
  if ((st.st_mode & 0077) != 0 && ::chmod(path.c_str(), 0700) != 0) {
    return ErrnoError("state", "cannot make " + path + " private (0700)", errno);
  }
  return StateDir(path);
}

std::string StateDir::File(const std::string& host, const char* suffix) const {
  return path_ + "/" + FileNameFor(host) + suffix;
}

std::vector<std::string> StateDir::Hosts() const {
  std::vector<std::string> hosts;
  DIR* dir = ::opendir(path_.c_str());
  if (dir == nullptr) return hosts;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    const std::string suffix = ".pid";
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      hosts.push_back(name.substr(0, name.size() - suffix.size()));
    }
  }
  ::closedir(dir);
  std::sort(hosts.begin(), hosts.end());
  return hosts;
}

void StateDir::RemoveFiles(const std::string& host) const {
  ::unlink(SocketPath(host).c_str());
  ::unlink(MuxPath(host).c_str());
  ::unlink(AgentSocketPath(host).c_str());
  ::unlink(PidPath(host).c_str());
}

Result<PidLock::Outcome> PidLock::TryAcquire(const std::string& path, PidLock* lock) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return ErrnoError("state", "cannot open " + path, errno);
  Outcome out;
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoError("state", "cannot lock " + path, errno);
    out.holder = ReadPid(fd.get());
    return out;
  }
  // The file may have been unlinked by a daemon that was exiting while we opened it:
  // make sure the lock is on the file that is at `path` now.
  struct stat by_fd {
  }, by_path{};
  if (::fstat(fd.get(), &by_fd) != 0 || ::stat(path.c_str(), &by_path) != 0 ||
      by_fd.st_ino != by_path.st_ino) {
    return MakeError("state", path + " changed while we locked it", "try again");
  }
  out.acquired = true;
  lock->fd_ = std::move(fd);
  lock->path_ = path;
  return out;
}

Status PidLock::WritePid(pid_t pid) {
  std::string text = std::to_string(pid) + "\n";
  if (::ftruncate(fd_.get(), 0) != 0 ||
      ::pwrite(fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return ErrnoError("state", "cannot write " + path_, errno);
  }
  return Status::Ok();
}

void PidLock::Release() { fd_.Reset(); }

LiveCheck CheckRunning(const std::string& pid_path) {
  LiveCheck check;
  UniqueFd fd(::open(pid_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return check;
  check.pid = ReadPid(fd.get());
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
    check.running = true;
  } else {
    ::flock(fd.get(), LOCK_UN);
  }
  return check;
}

}  // namespace tether::daemon
