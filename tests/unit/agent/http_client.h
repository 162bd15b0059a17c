// A small blocking HTTP/1.1 client for the agent's server tests: one connection per
// request (Connection: close), over TCP on loopback or a unix socket; reads the whole
// answer, bounded to 10 s. Shaped like the calls the tests make: Get, Post, status, body,
// get_header_value.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tether::agent::testing {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Reply {
  int status = 0;
  Headers headers;
  std::string body;

  std::string get_header_value(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
    }
    return "";
  }
};

// A connected socket to 127.0.0.1:port, or to the unix socket at `path`; -1 on failure.
inline int ConnectTo(int port, const std::string& path = "") {
  if (!path.empty()) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Parses "HTTP/1.1 200 OK\r\nName: value\r\n...\r\n\r\nbody"; nullopt when it is not one.
inline std::optional<Reply> ParseReply(const std::string& raw) {
  size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos || raw.size() < 12) {
    return std::nullopt;
  }
  Reply r;
  r.status = std::atoi(raw.c_str() + 9);
  size_t at = raw.find("\r\n") + 2;
  while (at < end) {
    size_t eol = raw.find("\r\n", at);
    std::string line = raw.substr(at, eol - at);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers.emplace_back(line.substr(0, colon), value);
    }
    at = eol + 2;
  }
  r.body = raw.substr(end + 4);
  return r;
}

class TestClient {
 public:
  explicit TestClient(int port, std::string socket_path = "")
      : port_(port), socket_path_(std::move(socket_path)) {}

  std::optional<Reply> Get(const std::string& path, const Headers& headers = {}) const {
    return Send("GET", path, headers, std::nullopt, "");
  }
  std::optional<Reply> Post(const std::string& path, const std::string& body,
                            const std::string& type) const {
    return Send("POST", path, {}, body, type);
  }
  std::optional<Reply> Post(const std::string& path, const Headers& headers,
                            const std::string& body, const std::string& type) const {
    return Send("POST", path, headers, body, type);
  }

 private:
  std::optional<Reply> Send(const std::string& method, const std::string& path,
                            const Headers& headers, const std::optional<std::string>& body,
                            const std::string& type) const {
    int fd = ConnectTo(port_, socket_path_);
    if (fd < 0) return std::nullopt;
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    if (body) {
      req +=
          "Content-Type: " + type + "\r\nContent-Length: " + std::to_string(body->size()) + "\r\n";
    }
    req += "\r\n";
    if (body) req += *body;
    size_t sent = 0;
    while (sent < req.size()) {
      ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server may refuse before taking a body
      sent += static_cast<size_t>(n);
    }
    std::string raw;
    char buf[4096];
    while (true) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      raw.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return ParseReply(raw);
  }

  int port_;
  std::string socket_path_;
};

}  // namespace tether::agent::testing
