#include "agent/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tether::agent {
namespace {

// A short queue: clients are a handful, and the reception takes connections at once.
constexpr int kListenBacklog = 64;

Error ListenError(const std::string& where, int e) {
  Error err = ErrnoError("listen", "cannot listen on " + where, e);
  err.hint = e == EADDRINUSE ? "another program (an older tether-agent?) has it; stop it or "
                               "choose another with --listen or --socket"
                             : "check the address given to --listen or --socket";
  return err;
}

bool FillUnixAddress(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

}  // namespace

Result<UniqueFd> ListenTcp(const ListenAddress& address, int* bound_port) {
  const std::string host = address.host == "localhost" ? "127.0.0.1" : address.host;
  const std::string where = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                            std::to_string(address.port);
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(address.port));
    len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(address.port));
    len = sizeof *v6;
  } else {
    return MakeError("listen", "cannot listen on " + where + ": not a numeric address",
                     "give --listen an address such as 127.0.0.1:8080 or [::1]:8080");
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ListenError(where, errno);
  int yes = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (ss.ss_family == AF_INET6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof yes);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(fd.get(), kListenBacklog) != 0) {
    return ListenError(where, errno);
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    return ListenError(where, errno);
  }
  *bound_port =
      ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return fd;
}

Result<UniqueFd> ListenUnix(const std::string& path, uid_t uid, struct stat* file) {
  sockaddr_un addr{};
  if (!FillUnixAddress(path, addr)) {
    return MakeError("listen",
                     "cannot listen on " + path + ": the path is longer than " +
                         std::to_string(sizeof addr.sun_path - 1) + " bytes",
                     "give --socket a shorter path");
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode) || st.st_uid != uid) {
      return MakeError(
          "listen",
          "cannot listen on " + path + ": something else is there" +
              (st.st_uid != uid ? " (owned by uid " + std::to_string(st.st_uid) + ")" : ""),
          "remove it, or give --socket another path");
    }
    // Ours: a running agent answers, a dead one's socket refuses.
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return ListenError(path, EADDRINUSE);
    }
    ::unlink(path.c_str());
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ListenError(path, errno);
  // The file is made with the umask's mode: 0600 from the start, not after a chmod.
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) return ListenError(path, bind_errno);
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd.get(), kListenBacklog) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return ListenError(path, e);
  }
  if (::lstat(path.c_str(), file) != 0) *file = {};
  return fd;
}

void RemoveUnixSocket(const std::string& path, const struct stat& file) {
  struct stat now {};
  if (::lstat(path.c_str(), &now) != 0) return;
  if (now.st_dev == file.st_dev && now.st_ino == file.st_ino) ::unlink(path.c_str());
}

}  // namespace tether::agent
