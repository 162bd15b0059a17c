#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

namespace tether::net {
namespace {

void SetCloseOnExec(int fd) { ::fcntl(fd, F_SETFD, FD_CLOEXEC); }

// Resolves with getaddrinfo; `passive` for listeners.
Result<addrinfo*> Resolve(const std::string& host, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : AI_ADDRCONFIG);
  std::string service = std::to_string(port);
  addrinfo* res = nullptr;
  const char* node = host.empty() ? nullptr : host.c_str();
  int rc = ::getaddrinfo(node, service.c_str(), &hints, &res);
  if (rc != 0) {
    return MakeError(ErrorCode::kResolve, "cannot resolve \"" + host + "\": " + ::gai_strerror(rc),
                     "check the HostName, your DNS, or that you are on the right network");
  }
  return res;
}

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { ::freeaddrinfo(a); }
};

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return MakeError("socket", "unix socket path too long (" + std::to_string(path.size()) +
                                   " bytes, at most " + std::to_string(sizeof addr.sun_path - 1) +
                                   "): " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

std::string FormatHostPort(const std::string& host, uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

Result<std::vector<UniqueFd>> ListenTcp(const std::string& host, uint16_t port) {
  std::string node = host.empty() ? "127.0.0.1" : (host == "*" ? "" : host);
  auto res = Resolve(node, port, true);
  if (!res.ok()) return res.take_error();
  std::unique_ptr<addrinfo, AddrInfoDeleter> list(*res);
  std::vector<UniqueFd> fds;
  std::string shown = FormatHostPort(host.empty() ? "127.0.0.1" : host, port);
  for (addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol));
    if (!fd) return ErrnoError(ErrorCode::kListen, "socket for " + shown, errno);
    SetCloseOnExec(fd.get());
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (port == 0 && !fds.empty()) {
      // Port 0 on several addresses: every listener takes the port the first one got.
      auto first = LocalPort(fds.front().get());
      if (first.ok()) {
        if (ai->ai_family == AF_INET)
          reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_port = htons(*first);
        if (ai->ai_family == AF_INET6)
          reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_port = htons(*first);
      }
    }
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      int err = errno;
      if (err == EADDRINUSE) {
        return MakeError(
            ErrorCode::kListen, "port " + std::to_string(port) + " is already in use on " + shown,
            "another program listens there (see `ss -ltnp 'sport = :" + std::to_string(port) +
                "'`); pick another local port",
            err);
      }
      if (err == EACCES) {
        return MakeError(ErrorCode::kListen, "no permission to listen on " + shown,
                         "ports below 1024 need privileges; pick a port above 1024", err);
      }
      return ErrnoError(ErrorCode::kListen, "bind " + shown, err);
    }
    if (::listen(fd.get(), SOMAXCONN) != 0)
      return ErrnoError(ErrorCode::kListen, "listen " + shown, errno);
    Status nb = SetNonBlocking(fd.get());
    if (!nb.ok()) return nb.take_error();
    fds.push_back(std::move(fd));
  }
  if (fds.empty()) return MakeError(ErrorCode::kListen, "no address to listen on for " + shown);
  return fds;
}

Result<UniqueFd> ListenUnix(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.take_error();
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return MakeError(ErrorCode::kListen, path + " exists and is not a socket",
                       "remove it or choose another path");
    }
    auto probe = ConnectUnix(path);
    if (probe.ok()) {
      return MakeError(ErrorCode::kListen, "unix socket " + path + " is already in use",
                       "another program listens there; choose another path");
    }
    ::unlink(path.c_str());  // stale: nobody accepts on it
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  if (!fd) return ErrnoError(ErrorCode::kListen, "socket for " + path, errno);
  SetCloseOnExec(fd.get());
  // Bind under a tight umask so the socket is never reachable by others, not even
  // between bind() and chmod().
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr);
  int err = errno;
  ::umask(old);
  if (rc != 0) return ErrnoError(ErrorCode::kListen, "bind " + path, err);
  if (::listen(fd.get(), SOMAXCONN) != 0)
    return ErrnoError(ErrorCode::kListen, "listen " + path, errno);
  Status nb = SetNonBlocking(fd.get());
  if (!nb.ok()) return nb.take_error();
  return fd;
}

Result<uint16_t> LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return ErrnoError("socket", "getsockname", errno);
  }
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return MakeError("socket", "not a TCP socket");
}

Result<UniqueFd> Accept(int listen_fd) {
  int fd = ::accept(listen_fd, nullptr, nullptr);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
      return UniqueFd();
    }
    return ErrnoError("accept", "accept", errno);
  }
  UniqueFd out(fd);
  SetCloseOnExec(fd);
  Status nb = SetNonBlocking(fd);
  if (!nb.ok()) return nb.take_error();
  return out;
}

Result<std::vector<SocketAddress>> ResolveTcp(const std::string& host, uint16_t port) {
  auto res = Resolve(host, port, false);
  if (!res.ok()) return res.take_error();
  std::unique_ptr<addrinfo, AddrInfoDeleter> list(*res);
  std::vector<SocketAddress> out;
  for (addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    SocketAddress a;
    std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.length = ai->ai_addrlen;
    out.push_back(a);
  }
  return out;
}

std::optional<SocketAddress> NumericAddress(const std::string& host, uint16_t port) {
  SocketAddress a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.length = sizeof *v4;
    return a;
  }
  a = SocketAddress{};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.length = sizeof *v6;
    return a;
  }
  return std::nullopt;
}

Error PolicyFailure(const std::string& host, uint16_t port, AddressScope scope, Reach reach) {
  return MakeError(ErrorCode::kPolicy,
                   FormatHostPort(host, port) + " is " + DescribeScope(scope) +
                       ", which the server may not reach through the laptop",
                   std::string("the laptop's network is closed to the server beyond ") +
                       (reach == Reach::kPublic ? "public addresses" : "its private networks") +
                       "; `laptop_network` (config.toml) or `tether up --laptop-network` "
                       "opens more of it");
}

Error ConnectFailure(const std::string& host, uint16_t port, int err) {
  std::string where = FormatHostPort(host, port);
  std::string hint;
  switch (err) {
    case ECONNREFUSED:
      hint = "nothing listens on " + where + ": is sshd running, and is the Port right?";
      break;
    case ETIMEDOUT:
      hint = "no answer from " + where +
             ": a firewall, the wrong network, or a host that is down (raise ConnectTimeout "
             "if the link is slow)";
      break;
    case ENETUNREACH:
    case EHOSTUNREACH:
      hint = "no route to " + where + ": check the network (VPN?) or use a ProxyJump host";
      break;
    default:
      break;
  }
  Error e = ErrnoError(ErrorCode::kConnect, "cannot connect to " + where, err);
  e.hint = hint;
  return e;
}

Result<UniqueFd> ConnectTcp(const std::string& host, uint16_t port,
                            std::chrono::milliseconds timeout, Reach reach) {
  auto list = ResolveTcp(host, port);
  if (!list.ok()) return list.take_error();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int last_err = 0;
  std::optional<AddressScope> skipped;  // the first address `reach` did not allow
  bool tried = false;
  for (const SocketAddress& address : *list) {
    AddressScope scope = ScopeOf(address.get());
    if (!Allows(reach, scope)) {
      if (!skipped) skipped = scope;
      continue;
    }
    tried = true;
    UniqueFd fd(::socket(address.storage.ss_family, SOCK_STREAM, 0));
    if (!fd) {
      last_err = errno;
      continue;
    }
    SetCloseOnExec(fd.get());
    (void)SetNonBlocking(fd.get());
    int rc = ::connect(fd.get(), address.get(), address.length);
    if (rc != 0 && errno != EINPROGRESS) {
      last_err = errno;
      continue;
    }
    if (rc != 0) {
      pollfd p{fd.get(), POLLOUT, 0};
      int wait_ms = -1;
      if (timeout.count() > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        wait_ms = left.count() > 0 ? static_cast<int>(left.count()) : 0;
      }
      int n;
      do {
        n = ::poll(&p, 1, wait_ms);
      } while (n < 0 && errno == EINTR);
      if (n == 0) {
        last_err = ETIMEDOUT;
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last_err = err;
        continue;
      }
    }
    (void)SetNonBlocking(fd.get(), false);
    return fd;
  }
  if (skipped && !tried) return PolicyFailure(host, port, *skipped, reach);
  return ConnectFailure(host, port, last_err);
}

Result<UniqueFd> ConnectUnix(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.take_error();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  if (!fd) return ErrnoError(ErrorCode::kConnect, "socket", errno);
  SetCloseOnExec(fd.get());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) != 0) {
    return ErrnoError(ErrorCode::kConnect, "connect to " + path, errno);
  }
  return fd;
}

Result<UniqueFd> ConnectUnixNow(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.take_error();
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  if (!fd) return ErrnoError(ErrorCode::kConnect, "socket", errno);
  SetCloseOnExec(fd.get());
  Status nb = SetNonBlocking(fd.get());
  if (!nb.ok()) return nb.take_error();
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) != 0) {
    int err = errno;
    if (err == EAGAIN) {
      return MakeError(ErrorCode::kConnect,
                       "the listener at " + path + " takes no more connections",
                       "its program accepts too slowly or not at all", err);
    }
    return ErrnoError(ErrorCode::kConnect, "connect to " + path, err);
  }
  return fd;
}

Status SetNonBlocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return ErrnoError("socket", "fcntl(F_GETFL)", errno);
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0) return ErrnoError("socket", "fcntl(F_SETFL)", errno);
  return Status::Ok();
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void SetKeepAlive(int fd, int idle_s, int interval_s, int count) {
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
#ifdef TCP_KEEPIDLE
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
#endif
#ifdef TCP_KEEPINTVL
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
#endif
#ifdef TCP_KEEPCNT
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
#endif
}

void SetSendTimeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::optional<std::chrono::microseconds> TcpRtt(int fd) {
#ifdef TCP_INFO
  tcp_info info{};
  socklen_t len = sizeof info;
  if (fd < 0 || ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  if (info.tcpi_rtt == 0) return std::nullopt;
  return std::chrono::microseconds(info.tcpi_rtt);
#else
  (void)fd;
  return std::nullopt;
#endif
}

std::optional<bool> PeerAcknowledges(int fd, std::chrono::milliseconds within) {
#ifdef TCP_INFO
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  return info.tcpi_unacked == 0 || info.tcpi_last_ack_recv <= within.count();
#else
  (void)fd;
  (void)within;
  return std::nullopt;
#endif
}

void SetUserTimeout(int fd, std::chrono::milliseconds timeout) {
#ifdef TCP_USER_TIMEOUT
  unsigned int ms = static_cast<unsigned int>(timeout.count());
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
#else
  (void)fd;
  (void)timeout;
#endif
}

}  // namespace tether::net
