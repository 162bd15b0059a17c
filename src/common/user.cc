// HomeDir and LookUpUser (common/fs.h) apart from the rest of fs.cc: they ask the password
// database (NSS), which tether-agent, linked statically, must not pull in; the agent links
// fs.cc without this file.
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "common/fs.h"

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

}  // namespace tether
