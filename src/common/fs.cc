#include "common/fs.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace tether {

std::string HomeDir() {
  const char* home = ::getenv("HOME");
  if (home != nullptr && *home != '\0') return home;
  passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr && pw->pw_dir != nullptr ? pw->pw_dir : "/";
}

std::optional<passwd> LookUpUser(const char* name, uid_t uid, std::vector<char>& buffer) {
  passwd pw{};
  passwd* found = nullptr;
  buffer.assign(16384, '\0');
  const int rc = name != nullptr ? getpwnam_r(name, &pw, buffer.data(), buffer.size(), &found)
                                 : getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) return std::nullopt;
  return pw;
}

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

}  // namespace tether
