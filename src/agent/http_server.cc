#include "agent/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/text.h"

namespace tether::agent {
namespace {

using Clock = std::chrono::steady_clock;

// What the reception reads at once; a head is a few hundred bytes.
constexpr size_t kReadChunk = 4096;
// Connections taken from the listen queue per wake-up, so a flood of connects cannot keep
// the reception from the heads it already holds.
constexpr int kAcceptsPerWake = 64;
// After an accept failure other than "nothing to take" (out of descriptors, say), the
// reception waits this long before trying again instead of spinning on a readable socket.
constexpr std::chrono::milliseconds kAcceptBackoff{50};

int Millis(std::chrono::milliseconds d) { return static_cast<int>(d.count()); }

void CloseConnection(int fd) {
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

// Whether `fd` is ready for `events` within `timeout_ms`.
bool Wait(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  while (true) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    return r > 0;
  }
}

bool SendAll(int fd, std::string_view data, int timeout_ms) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && Wait(fd, POLLOUT, timeout_ms)) {
      continue;
    }
    return false;
  }
  return true;
}

std::string PeerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "-";
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, text, sizeof text);
    return text;
  }
  if (ss.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, text, sizeof text);
    return text;
  }
  ucred cred{};
  socklen_t cred_len = sizeof cred;
  if (ss.ss_family == AF_UNIX && ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0) {
    return "uid " + std::to_string(cred.uid);
  }
  return "-";
}

bool IsUnixSocket(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family == AF_UNIX;
}

}  // namespace

std::string_view StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 500:
      return "Internal Server Error";
    default:
      return "Unknown";
  }
}

class HttpServer::Impl {
 public:
  Impl(UniqueFd listener, std::optional<uid_t> only_uid, HttpLimits limits, HttpHandlers handlers)
      : listener_(std::move(listener)),
        only_uid_(only_uid),
        unix_(IsUnixSocket(listener_.get())),
        limits_(limits),
        handlers_(std::move(handlers)) {
    int flags = ::fcntl(listener_.get(), F_GETFL);
    if (flags >= 0) ::fcntl(listener_.get(), F_SETFL, flags | O_NONBLOCK);
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
  }
  ~Impl() {
    if (wake_[0] >= 0) ::close(wake_[0]);
    if (wake_[1] >= 0) ::close(wake_[1]);
  }

  Status Serve() {
    if (wake_[0] < 0) return ErrnoError("serve", "cannot make the wake pipe", errno);
    {
      std::lock_guard lock(mu_);
      if (stopping_) return Status::Ok();
    }
    std::vector<std::thread> workers;
    for (size_t i = 0; i < std::max<size_t>(limits_.workers, 1); ++i) {
      workers.emplace_back([this] { Work(); });
    }
    Receive();
    ready_cv_.notify_all();
    for (auto& w : workers) w.join();
    std::lock_guard lock(mu_);
    for (auto& c : waiting_) CloseConnection(c.fd);
    for (auto& c : ready_) CloseConnection(c.fd);
    waiting_.clear();
    ready_.clear();
    return Status::Ok();
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    ready_cv_.notify_all();
    Wake();
  }

  size_t connections() const {
    std::lock_guard lock(mu_);
    return held();
  }

  void ReplaceListener(UniqueFd listener) {
    int flags = ::fcntl(listener.get(), F_GETFL);
    if (flags >= 0) ::fcntl(listener.get(), F_SETFL, flags | O_NONBLOCK);
    {
      std::lock_guard lock(mu_);
      next_listener_ = std::move(listener);
    }
    Wake();
  }

 private:
  struct Conn {
    int fd = -1;
    std::string buffered;  // read and not yet consumed: the head so far, or more
    size_t served = 0;     // requests answered on it
    Clock::time_point deadline;
    std::string peer;
  };

  size_t held() const { return waiting_.size() + ready_.size() + serving_; }

  void Wake() {
    char byte = 1;
    if (wake_[1] >= 0) (void)!::write(wake_[1], &byte, 1);
  }

  // The reception: accepts, reads heads, drops what is late, hands on what is complete.
  void Receive() {
    std::vector<pollfd> fds;
    Clock::time_point accept_paused_until{};
    while (true) {
      {
        // Only this thread uses listener_: it is swapped here, between polls.
        std::lock_guard lock(mu_);
        if (next_listener_) listener_ = std::move(next_listener_);
      }
      fds.clear();
      fds.push_back(pollfd{wake_[0], POLLIN, 0});
      const Clock::time_point now = Clock::now();
      const bool accepting = now >= accept_paused_until;
      fds.push_back(pollfd{listener_.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
      int timeout_ms = -1;
      if (!accepting) {
        timeout_ms = static_cast<int>(
            std::chrono::ceil<std::chrono::milliseconds>(accept_paused_until - now).count());
      }
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        for (const Conn& c : waiting_) {
          fds.push_back(pollfd{c.fd, POLLIN, 0});
          auto left = std::chrono::ceil<std::chrono::milliseconds>(c.deadline - now).count();
          left = std::max<int64_t>(left, 0);
          if (timeout_ms < 0 || left < timeout_ms) timeout_ms = static_cast<int>(left);
        }
      }
      int r = ::poll(fds.data(), fds.size(), timeout_ms);
      if (r < 0 && errno != EINTR) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      char drain[64];
      while (::read(wake_[0], drain, sizeof drain) > 0) {
      }
      if (r > 0 && (fds[1].revents & POLLIN) != 0 && !AcceptSome()) {
        accept_paused_until = Clock::now() + kAcceptBackoff;
      }
      std::lock_guard lock(mu_);
      if (stopping_) return;
      for (size_t i = 2; r > 0 && i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        // Found by descriptor: one dropped meanwhile is gone (a number reused by a newer
        // connection only gets a read that would block).
        auto it = std::find_if(waiting_.begin(), waiting_.end(),
                               [&](const Conn& c) { return c.fd == fds[i].fd; });
        if (it != waiting_.end()) ReadHead(it);
      }
      const Clock::time_point later = Clock::now();
      std::erase_if(waiting_, [&](const Conn& c) {
        if (later < c.deadline) return false;
        CloseConnection(c.fd);
        return true;
      });
    }
  }

  // False when accepting failed for a reason other than an empty queue.
  bool AcceptSome() {
    for (int i = 0; i < kAcceptsPerWake; ++i) {
      int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) {
          return true;
        }
        return false;
      }
      Admit(fd);
    }
    return true;
  }

  void Admit(int fd) {
    if (unix_ && only_uid_) {
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != *only_uid_) {
        const std::string who = len == sizeof cred ? std::to_string(cred.uid) : "unknown";
        CloseConnection(fd);
        if (handlers_.note) handlers_.note("closed a connection from uid " + who + " (not ours)");
        return;
      }
    } else if (!unix_) {
      int one = 1;
      // Answers go out as a head then a body: without this, Nagle holds the body back for
      // the client's delayed ACK (40 ms on Linux).
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    std::string peer = PeerOf(fd);
    std::lock_guard lock(mu_);
    if (held() >= limits_.max_connections) {
      if (waiting_.empty()) {
        CloseConnection(fd);  // every one held is being served
        return;
      }
      // Real clients send their request as they connect: the one that has waited longest
      // for its head is the likeliest to be holding a place.
      CloseConnection(waiting_.front().fd);
      waiting_.erase(waiting_.begin());
    }
    Conn c;
    c.fd = fd;
    c.deadline = Clock::now() + limits_.head_timeout;
    c.peer = std::move(peer);
    waiting_.push_back(std::move(c));
  }

  static bool HeadReady(const std::string& buffered, size_t max_head) {
    return !buffered.empty() && ParseRequestHead(buffered, max_head).state != ParseState::kNeedMore;
  }

  // Under mu_: reads what `it` sent; a closed connection is dropped, a complete (or
  // refused) head goes to the workers.
  void ReadHead(std::vector<Conn>::iterator it) {
    const size_t max = limits_.max_head_bytes;
    char buf[kReadChunk];
    size_t room = std::min(sizeof buf, max - std::min(max, it->buffered.size()));
    ssize_t n = ::recv(it->fd, buf, std::max<size_t>(room, 1), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      CloseConnection(it->fd);
      waiting_.erase(it);
      return;
    }
    it->buffered.append(buf, static_cast<size_t>(n));
    if (!HeadReady(it->buffered, max)) return;
    ready_.push_back(std::move(*it));
    waiting_.erase(it);
    ready_cv_.notify_one();
  }

  // A worker: serves connections whose head is in, one request at a time; a connection
  // kept alive goes back to the reception unless its next head is already read.
  void Work() {
    while (true) {
      Conn c;
      {
        std::unique_lock lock(mu_);
        ready_cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
        if (stopping_) return;
        c = std::move(ready_.front());
        ready_.pop_front();
        ++serving_;
      }
      bool open = true;
      while (open) {
        open = ServeOne(c);
        if (!open || !HeadReady(c.buffered, limits_.max_head_bytes)) break;
      }
      {
        std::lock_guard lock(mu_);
        --serving_;
        if (!open || stopping_) {
          CloseConnection(c.fd);
          continue;
        }
        c.deadline = Clock::now() + limits_.idle_timeout;
        waiting_.push_back(std::move(c));
      }
      Wake();
    }
  }

  HttpResponse Refusal(int status, const std::string& reason) const {
    HttpResponse r;
    if (handlers_.refusal) {
      r = handlers_.refusal(status, reason);
    } else {
      r.status = status;
    }
    r.close = true;
    return r;
  }

  bool Send(const Conn& c, const HttpResponse& r, bool keep, bool head_only) const {
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " ";
    out += StatusText(r.status);
    out += "\r\n";
    if (!r.content_type.empty()) out += "Content-Type: " + r.content_type + "\r\n";
    for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    out += keep ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    if (!head_only) out += r.body;
    return SendAll(c.fd, out, Millis(limits_.io_timeout));
  }

  // Reads the `length` bytes of body that follow the head; false when they do not come.
  bool ReadBody(Conn& c, size_t length, std::string& body) const {
    const size_t from_buffer = std::min(length, c.buffered.size());
    body.assign(c.buffered, 0, from_buffer);
    c.buffered.erase(0, from_buffer);
    char buf[kReadChunk];
    while (body.size() < length) {
      if (!Wait(c.fd, POLLIN, Millis(limits_.io_timeout))) return false;
      ssize_t n = ::recv(c.fd, buf, std::min(sizeof buf, length - body.size()), MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (n <= 0) return false;
      body.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  // Serves the request whose head is at the start of c.buffered. Returns whether the
  // connection stays open; c.buffered then holds what was read past this request.
  bool ServeOne(Conn& c) {
    HeadParse head = ParseRequestHead(c.buffered, limits_.max_head_bytes);
    if (head.state == ParseState::kNeedMore) return true;  // back to the reception
    if (head.state == ParseState::kError) {
      // What follows a head we could not parse cannot be trusted to start a request.
      (void)Send(c, Refusal(head.status, head.reason), false, false);
      if (handlers_.log) handlers_.log(c.peer, nullptr, head.status);
      return false;
    }
    c.buffered.erase(0, head.head_bytes);
    ++c.served;
    const HttpRequest& req = head.request;
    const bool head_only = req.method == "HEAD";
    auto finish = [&](const HttpResponse& r, bool keep) {
      const bool sent = Send(c, r, keep, head_only);
      if (handlers_.log) handlers_.log(c.peer, &req, r.status);
      return sent && keep;
    };

    if (handlers_.before_body) {
      if (std::optional<HttpResponse> refused = handlers_.before_body(req)) {
        return finish(*refused, false);
      }
    }
    size_t length = 0;
    if (req.HeaderCount("Transfer-Encoding") > 0) {
      return finish(Refusal(400, "chunked bodies are not accepted: send a Content-Length"), false);
    }
    if (size_t count = req.HeaderCount("Content-Length"); count > 1) {
      return finish(Refusal(400, "more than one Content-Length"), false);
    } else if (count == 1) {
      auto n = ParseUint(*req.Header("Content-Length"));
      if (!n) return finish(Refusal(400, "bad Content-Length"), false);
      if (*n > limits_.max_body_bytes) {
        return finish(Refusal(413, "at most " + std::to_string(limits_.max_body_bytes) + " bytes"),
                      false);
      }
      length = static_cast<size_t>(*n);
    }
    // curl asks first for a body over 1 KiB and waits a second for the go-ahead
    // (RFC 9110 section 10.1.1); a refusal above was the other answer.
    if (length > c.buffered.size() && req.minor_version >= 1) {
      std::optional<std::string_view> expect = req.Header("Expect");
      if (expect && (*expect == "100-continue" || *expect == "100-Continue") &&
          !SendAll(c.fd, "HTTP/1.1 100 Continue\r\n\r\n", Millis(limits_.io_timeout))) {
        return false;
      }
    }
    std::string body;
    if (!ReadBody(c, length, body)) {
      return finish(Refusal(400, "the body did not arrive"), false);
    }

    HttpResponse r;
    if (head_only) {
      // HEAD is GET without the body (RFC 9110 section 9.3.2).
      HttpRequest as_get = req;
      as_get.method = "GET";
      r = handlers_.handle(as_get, body);
    } else {
      r = handlers_.handle(req, body);
    }
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
    }
    const bool keep = !r.close && req.KeepAlive() && c.served < limits_.max_requests && !stopping;
    return finish(r, keep);
  }

  UniqueFd listener_;
  const std::optional<uid_t> only_uid_;
  const bool unix_;
  const HttpLimits limits_;
  const HttpHandlers handlers_;
  int wake_[2] = {-1, -1};

  mutable std::mutex mu_;
  std::condition_variable ready_cv_;
  std::vector<Conn> waiting_;  // by arrival: the oldest first
  std::deque<Conn> ready_;
  size_t serving_ = 0;
  bool stopping_ = false;
  UniqueFd next_listener_;  // from ReplaceListener, for the reception to take
};

HttpServer::HttpServer(UniqueFd listener, std::optional<uid_t> only_uid, HttpLimits limits,
                       HttpHandlers handlers)
    : impl_(std::make_unique<Impl>(std::move(listener), only_uid, limits, std::move(handlers))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Serve() { return impl_->Serve(); }
void HttpServer::Stop() { impl_->Stop(); }
size_t HttpServer::connections() const { return impl_->connections(); }
void HttpServer::ReplaceListener(UniqueFd listener) { impl_->ReplaceListener(std::move(listener)); }

}  // namespace tether::agent
