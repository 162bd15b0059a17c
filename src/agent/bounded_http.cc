#include "agent/bounded_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tether::agent {
namespace {

// Read-ahead: httplib reads a request line and headers one byte at a time.
constexpr size_t kReadAhead = 4096;

// Set by a handler, read by the connection loop: both run on the same worker thread.
thread_local bool t_close_after_response = false;

int ToMillis(time_t sec, time_t usec) { return static_cast<int>(sec * 1000 + usec / 1000); }

// Waits for `events` on `fd`; false on timeout or error.
bool Wait(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  while (true) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

void Address(const sockaddr_storage& ss, std::string& ip, int& port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &a.sin_addr, text, sizeof text);
    port = ntohs(a.sin_port);
  } else if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &a.sin6_addr, text, sizeof text);
    port = ntohs(a.sin6_port);
  }
  ip = text;
}

// One connection's socket as httplib sees it, with a read budget per request.
class BoundedStream : public httplib::Stream {
 public:
  BoundedStream(int sock, int read_timeout_ms, int write_timeout_ms)
      : sock_(sock), read_timeout_ms_(read_timeout_ms), write_timeout_ms_(write_timeout_ms) {}

  void StartRequest(size_t budget) { budget_ = budget; }
  bool exhausted() const { return exhausted_; }
  bool has_buffered() const { return begin_ < end_; }

  bool is_readable() const override {
    return has_buffered() || Wait(sock_, POLLIN, read_timeout_ms_);
  }
  bool is_writable() const override { return Wait(sock_, POLLOUT, write_timeout_ms_); }

  ssize_t read(char* ptr, size_t size) override {
    if (budget_ == 0) {
      exhausted_ = true;
      return -1;
    }
    if (!has_buffered()) {
      if (!Wait(sock_, POLLIN, read_timeout_ms_)) return -1;
      ssize_t n;
      do {
        n = ::recv(sock_, buf_, sizeof buf_, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<size_t>(n);
    }
    size_t n = std::min({size, end_ - begin_, budget_});
    std::memcpy(ptr, buf_ + begin_, n);
    begin_ += n;
    budget_ -= n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(sock_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) Address(ss, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(sock_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) Address(ss, ip, port);
  }
  socket_t socket() const override { return sock_; }

 private:
  const int sock_;
  const int read_timeout_ms_;
  const int write_timeout_ms_;
  char buf_[kReadAhead];
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t budget_ = 0;
  bool exhausted_ = false;
};

}  // namespace

void BoundedHttpServer::CloseConnectionAfterResponse() { t_close_after_response = true; }

bool BoundedHttpServer::process_and_close_socket(socket_t sock) {
  // Responses go out as headers then body: without this, Nagle holds the body back for
  // the client's delayed ACK (40 ms on Linux).
  int one = 1;
  ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  BoundedStream stream(sock, ToMillis(read_timeout_sec_, read_timeout_usec_),
                       ToMillis(write_timeout_sec_, write_timeout_usec_));
  const int idle_ms = ToMillis(keep_alive_timeout_sec_, 0);
  bool ok = true;
  for (size_t left = keep_alive_max_count_; left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
    if (!stream.has_buffered() && !Wait(sock, POLLIN, idle_ms)) break;
    stream.StartRequest(max_head_bytes_ + max_body_bytes_);
    t_close_after_response = false;
    bool closed_by_client = false;
    ok = process_request(stream, /*close_connection=*/left == 1, closed_by_client, nullptr);
    if (!ok || closed_by_client || stream.exhausted() || t_close_after_response) break;
  }
  t_close_after_response = false;
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ok;
}

}  // namespace tether::agent
