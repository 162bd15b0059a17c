#include "control/control_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "control/control_server.h"
#include "net/socket.h"

namespace tether::control {

Result<ControlConnection> ControlConnection::Open(const std::string& socket_path) {
  auto fd = net::ConnectUnix(socket_path);
  if (!fd.ok()) return MakeError("control", fd.error().message);
  return ControlConnection(std::move(*fd), socket_path);
}

Result<nlohmann::json> ControlConnection::Request(const nlohmann::json& request,
                                                  std::chrono::milliseconds timeout) {
  std::string line = request.dump() + "\n";
  if (::send(fd_.get(), line.data(), line.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(line.size())) {
    return ErrnoError("control", "send to " + path_, errno);
  }
  std::fill(line.begin(), line.end(), '\0');  // it may hold a login's answer
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (in_.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return MakeError("control", "no reply from " + path_);
    pollfd p{fd_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char buf[8192];
    ssize_t got = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (got == 0) return MakeError("control", "the daemon closed the connection");
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoError("control", "read from " + path_, errno);
    }
    in_.append(buf, static_cast<size_t>(got));
    if (in_.size() > 16 * kMaxLineBytes) return MakeError("control", "reply too long");
  }
  const size_t nl = in_.find('\n');
  auto reply = nlohmann::json::parse(in_.substr(0, nl), nullptr, false);
  in_.erase(0, nl + 1);
  if (reply.is_discarded() || !reply.is_object()) {
    return MakeError("control", "malformed reply from " + path_);
  }
  return reply;
}

Result<nlohmann::json> Request(const std::string& socket_path, const nlohmann::json& request,
                               std::chrono::milliseconds timeout) {
  auto connection = ControlConnection::Open(socket_path);
  if (!connection.ok()) return connection.take_error();
  return connection->Request(request, timeout);
}

}  // namespace tether::control
