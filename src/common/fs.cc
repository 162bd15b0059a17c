#include "common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace tether {

int MakeDirs(const std::string& dir, std::string* failed) {
  // Bounded by the path's length: one mkdir per component.
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      int err = errno;
      if (failed != nullptr) *failed = prefix;
      return err;
    }
  }
  return 0;
}

int MakeParentDirs(const std::string& file, std::string* failed) {
  size_t last = file.rfind('/');
  if (last == std::string::npos || last == 0) return 0;
  return MakeDirs(file.substr(0, last), failed);
}

int WriteFileAtomically(const std::string& path, std::string_view data, mode_t mode,
                        std::string* failed) {
  if (int err = MakeParentDirs(path, failed)) return err;
  std::string tmp = path + ".XXXXXX";
  auto fail = [&](const std::string& what, bool made) {
    const int err = errno;
    if (made) ::unlink(tmp.c_str());
    if (failed != nullptr) *failed = what;
    return err;
  };
  // mkstemp: a name nobody else has, created exclusively, 0600 until told otherwise.
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return fail(tmp, false);
  auto close_and_fail = [&](const std::string& what) {
    const int err = fail(what, true);
    ::close(fd);
    return err;
  };
  if (::fchmod(fd, mode) != 0) return close_and_fail(tmp);
  // Bounded: each round writes at least one byte or fails.
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return close_and_fail(tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return close_and_fail(tmp);
  if (::close(fd) != 0) return fail(tmp, true);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(path, true);
  return 0;
}

int ReadFile(const std::string& path, std::string* data, size_t max) {
  data->clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<size_t>(st.st_size) <= max)
    data->reserve(static_cast<size_t>(st.st_size));
  int err = 0;
  char buf[1 << 16];
  // Bounded: each round reads at least one byte, and no more than `max` in all.
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    if (data->size() + static_cast<size_t>(n) > max) {
      err = EFBIG;
      break;
    }
    data->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (err != 0) std::string().swap(*data);
  return err;
}

}  // namespace tether
