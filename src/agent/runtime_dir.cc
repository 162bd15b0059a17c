#include "agent/runtime_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "common/fs.h"
#include "common/text.h"

namespace tether::agent {
namespace {

constexpr size_t kMaxPasswd = size_t{64} << 20;  // a site with a million accounts

std::string Mode(mode_t m) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(m & 07777));
  return text;
}

// lstat's verdict on `path` as a directory owned by `uid`; `allowed` are the mode bits
// group and others may have.
Status CheckDir(const std::string& path, uid_t uid, mode_t allowed) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoError("socket", "cannot use " + path, errno);
  if (S_ISLNK(st.st_mode)) {
    return MakeError("socket", path + " is a symbolic link",
                     "the agent's socket directory must be a real directory of yours");
  }
  if (!S_ISDIR(st.st_mode)) return MakeError("socket", path + " is not a directory");
  if (st.st_uid != uid) {
    return MakeError("socket", path + " belongs to uid " + std::to_string(st.st_uid),
                     "give --socket a path in a directory of your own");
  }
  if ((st.st_mode & 077 & ~allowed) != 0) {
    return MakeError("socket", path + " lets other accounts in (mode " + Mode(st.st_mode) + ")",
                     "chmod 700 " + path);
  }
  return Status::Ok();
}

}  // namespace

RuntimeDirInputs CurrentRuntimeDirInputs() {
  RuntimeDirInputs in;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr) in.xdg_runtime_dir = x;
  auto home = AgentHomeDir();
  if (home) in.home = *home;
  in.uid = ::geteuid();
  return in;
}

Status CheckPrivateDir(const std::string& path, uid_t uid, bool create) {
  if (create) {
    std::string failed;
    // MakeDirs makes what is missing 0700 and leaves what exists alone.
    if (int err = MakeDirs(path, &failed)) {
      return ErrnoError("socket", "cannot create " + failed, err);
    }
  }
  return CheckDir(path, uid, 0);
}

Status CheckSocketParent(const std::string& socket_path, uid_t uid) {
  size_t slash = socket_path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : socket_path.substr(0, slash);
  if (dir.empty()) dir = "/";
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 && errno == ENOENT) {
    std::string failed;
    if (int err = MakeDirs(dir, &failed)) {
      return ErrnoError("socket", "cannot create " + failed, err);
    }
  }
  // Group or others may read or enter; writing would let them replace the socket.
  return CheckDir(dir, uid, 055);
}

Result<std::string> ResolveRuntimeDir(const RuntimeDirInputs& in) {
  if (!in.xdg_runtime_dir.empty() && in.xdg_runtime_dir.front() == '/' &&
      CheckDir(in.xdg_runtime_dir, in.uid, 0)) {
    const std::string dir = in.xdg_runtime_dir + "/tether";
    Status ok = CheckPrivateDir(dir, in.uid, true);
    if (!ok) return ok.take_error();
    return dir;
  }
  const std::string run_user = in.run_user_root + "/" + std::to_string(in.uid);
  if (CheckDir(run_user, in.uid, 0)) {
    const std::string dir = run_user + "/tether";
    Status ok = CheckPrivateDir(dir, in.uid, true);
    if (!ok) return ok.take_error();
    return dir;
  }
  if (in.home.empty()) {
    return MakeError("socket", "no runtime directory and no home directory",
                     "set HOME or XDG_RUNTIME_DIR, or give --socket PATH");
  }
  const std::string dir = in.home + "/.cache/tether/run";
  Status ok = CheckPrivateDir(dir, in.uid, true);
  if (!ok) return ok.take_error();
  return dir;
}

Result<std::string> AgentHomeDir() {
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return std::string(home);
  // /etc/passwd as a file: a static binary asks no NSS service.
  std::string passwd;
  tether::ReadFile("/etc/passwd", &passwd, kMaxPasswd);
  const std::string uid = std::to_string(::geteuid());
  auto entry = FindPasswdEntry(passwd, ::geteuid());
  if (entry && !entry->home.empty()) return std::move(entry->home);
  return MakeError("home", "HOME is not set and /etc/passwd has no line for uid " + uid,
                   "set HOME");
}

}  // namespace tether::agent
