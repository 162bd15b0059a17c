#include "control/control_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "control/control_server.h"
#include "net/socket.h"

namespace tether::control {

Result<nlohmann::json> Request(const std::string& socket_path, const nlohmann::json& request,
                               std::chrono::milliseconds timeout) {
  auto fd = net::ConnectUnix(socket_path);
  if (!fd.ok()) return MakeError("control", fd.error().message);
  std::string line = request.dump() + "\n";
  if (::send(fd->get(), line.data(), line.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(line.size())) {
    return ErrnoError("control", "send to " + socket_path, errno);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string in;
  while (in.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return MakeError("control", "no reply from " + socket_path);
    pollfd p{fd->get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char buf[8192];
    ssize_t got = ::recv(fd->get(), buf, sizeof buf, 0);
    if (got == 0) return MakeError("control", "the daemon closed the connection");
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoError("control", "read from " + socket_path, errno);
    }
    in.append(buf, static_cast<size_t>(got));
    if (in.size() > 16 * kMaxLineBytes) return MakeError("control", "reply too long");
  }
  auto reply = nlohmann::json::parse(in.substr(0, in.find('\n')), nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    return MakeError("control", "malformed reply from " + socket_path);
  }
  return reply;
}

}  // namespace tether::control
