#include "agent/token.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "agent/runtime_dir.h"
#include "common/fs.h"
#include "common/text.h"
#include "common/unique_fd.h"

namespace tether::agent {
namespace {

// A token file is tiny; reading more than this means it is something else.
constexpr size_t kMaxTokenFileBytes = 256;

std::string ToHex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    hex.push_back(kDigits[bytes[i] >> 4]);
    hex.push_back(kDigits[bytes[i] & 0xf]);
  }
  return hex;
}

// Fills `out` from the kernel's CSPRNG: getrandom(2) (Linux 3.17 and later), else
// /dev/urandom for an older kernel or a sandbox that refuses the call.
bool RandomBytes(unsigned char* out, size_t n) {
  size_t have = 0;
  while (have < n) {
    ssize_t got = ::getrandom(out + have, n - have, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    have += static_cast<size_t>(got);
  }
  if (have == n) return true;
  UniqueFd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  while (have < n) {
    ssize_t got = ::read(fd.get(), out + have, n - have);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    have += static_cast<size_t>(got);
  }
  return true;
}

// Wipes `bytes` in a way the compiler may not drop as a dead store.
void Cleanse(unsigned char* bytes, size_t n) {
  volatile unsigned char* p = bytes;
  for (size_t i = 0; i < n; ++i) p[i] = 0;
}

bool IsToken(std::string_view s) {
  if (s.size() != kTokenHexChars) return false;
  for (char c : s) {
    bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return false;
  }
  return true;
}

Status MakeParents(const std::string& path) {
  std::string failed;
  if (int err = MakeParentDirs(path, &failed)) {
    return ErrnoError("token", "cannot create " + failed, err);
  }
  return Status::Ok();
}

// Reads and checks an existing token file; ENOENT comes back as an error with that errno.
Result<std::string> ReadToken(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoError("token", "cannot open " + path, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("token", "cannot stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return MakeError("token", path + " is not a regular file");
  if (st.st_uid != ::geteuid()) {
    return MakeError("token", path + " belongs to another user",
                     "remove it, or run tether-agent as its owner");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return MakeError("token", path + " may be read by others (mode " + mode + ")",
                     "chmod 600 " + path);
  }
  char buf[kMaxTokenFileBytes + 1];
  size_t have = 0;
  while (have < sizeof buf) {
    ssize_t n = ::read(fd.get(), buf + have, sizeof buf - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("token", "cannot read " + path, errno);
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  std::string_view content = Trim(std::string_view(buf, have));
  if (have > kMaxTokenFileBytes || !IsToken(content)) {
    return MakeError("token", path + " does not hold a tether-agent token (64 hex digits)",
                     "remove it and a new token will be made");
  }
  return std::string(content);
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("token", "cannot write", errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Writes a new token into `path` unless one appears there first; returns the winner.
Result<std::string> CreateToken(const std::string& path) {
  Status dirs = MakeParents(path);
  if (!dirs) return dirs.take_error();
  auto token = GenerateToken();
  if (!token) return token.take_error();

  // A private name: agents starting at once (or threads, in tests) never share it.
  unsigned char nonce[8];
  if (!RandomBytes(nonce, sizeof nonce)) {
    return MakeError("token", "the system random generator failed (getrandom, /dev/urandom)");
  }
  const std::string tmp = path + ".tmp." + ToHex(nonce, sizeof nonce);
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return ErrnoError("token", "cannot create " + tmp, errno);
    // The mode passed to open is masked by umask; 0600 is what we promise.
    if (::fchmod(fd.get(), 0600) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return ErrnoError("token", "cannot chmod " + tmp, e);
    }
    Status written = WriteAll(fd.get(), *token + "\n");
    if (written && ::fsync(fd.get()) != 0) written = ErrnoError("token", "fsync", errno);
    if (!written) {
      ::unlink(tmp.c_str());
      return written.take_error();
    }
  }
  // link() never replaces: if another agent won the race, we read its token instead.
  int rc = ::link(tmp.c_str(), path.c_str());
  int link_errno = errno;
  if (rc != 0 && link_errno != EEXIST) {
    // Some filesystems have no hard links; rename is atomic too, only not exclusive.
    rc = ::rename(tmp.c_str(), path.c_str());
    link_errno = errno;
  }
  ::unlink(tmp.c_str());
  if (rc != 0 && link_errno != EEXIST) {
    return ErrnoError("token", "cannot create " + path, link_errno);
  }
  return ReadToken(path);
}

}  // namespace

std::string DefaultTokenPath() {
  auto home = AgentHomeDir();
  return (home ? *home : std::string("/")) + "/.config/tether/agent-token";
}

Result<std::string> GenerateToken() {
  unsigned char bytes[kTokenBytes];
  if (!RandomBytes(bytes, sizeof bytes)) {
    return MakeError("token", "the system random generator failed (getrandom, /dev/urandom)");
  }
  std::string hex = ToHex(bytes, sizeof bytes);
  Cleanse(bytes, sizeof bytes);
  return hex;
}

Result<std::string> LoadOrCreateToken(const std::string& path) {
  auto existing = ReadToken(path);
  if (existing || existing.error().sys_errno != ENOENT) return existing;
  return CreateToken(path);
}

bool TokenMatches(std::string_view token, std::string_view presented) {
  if (token.empty() || presented.size() != token.size()) return false;
  // Every byte is looked at whatever the first difference: the time says nothing of where
  // a guess went wrong. volatile keeps the compiler from stopping early.
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < token.size(); ++i) {
    diff = diff | static_cast<unsigned char>(token[i] ^ presented[i]);
  }
  return diff == 0;
}

std::string_view BearerCredentials(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  std::string_view v = Trim(authorization);
  if (v.size() <= kScheme.size() || (v[kScheme.size()] != ' ' && v[kScheme.size()] != '\t')) {
    return {};
  }
  for (size_t i = 0; i < kScheme.size(); ++i) {
    char c = v[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return {};
  }
  return Trim(v.substr(kScheme.size()));
}

}  // namespace tether::agent
