#include "agent/bounded_http.h"

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
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace tether::agent {
namespace {

// Read-ahead: httplib reads a request line and headers one byte at a time.
constexpr size_t kReadAhead = 4096;

using Clock = std::chrono::steady_clock;

// Without its wake pipe the reception polls this often, for a stop or a returned
// connection it would otherwise not hear of. With it, it sleeps until a deadline or a wake.
constexpr int kReceptionTickMs = 1000;

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

// One connection's socket as httplib sees it, with a read budget per request and the
// bytes read ahead of it (the head the reception collected, pipelined requests).
class BoundedStream : public httplib::Stream {
 public:
  BoundedStream(int sock, int read_timeout_ms, int write_timeout_ms, std::string buffered)
      : sock_(sock),
        read_timeout_ms_(read_timeout_ms),
        write_timeout_ms_(write_timeout_ms),
        buf_(std::move(buffered)) {}

  void StartRequest(size_t budget) { budget_ = budget; }
  bool exhausted() const { return exhausted_; }
  bool has_buffered() const { return begin_ < buf_.size(); }
  // What was read and not consumed.
  std::string TakeBuffered() {
    std::string rest = buf_.substr(begin_);
    buf_.clear();
    begin_ = 0;
    return rest;
  }

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
      char chunk[kReadAhead];
      ssize_t n;
      do {
        n = ::recv(sock_, chunk, sizeof chunk, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      buf_.assign(chunk, static_cast<size_t>(n));
      begin_ = 0;
    }
    size_t n = std::min({size, buf_.size() - begin_, budget_});
    std::memcpy(ptr, buf_.data() + begin_, n);
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
  std::string buf_;
  size_t begin_ = 0;
  size_t budget_ = 0;
  bool exhausted_ = false;
};

// Whether `bytes` hold a whole request head (an empty line ends it; httplib takes a bare
// LF for a line end too).
bool HasHead(const std::string& bytes) {
  return bytes.find("\r\n\r\n") != std::string::npos || bytes.find("\n\n") != std::string::npos;
}

void CloseConnection(int sock) {
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
}

}  // namespace

// Holds connections until their request head is in, hands them to the workers, and takes
// keep-alive connections back. Also the server's task queue: httplib's accept loop calls
// enqueue() with the job of serving one accepted socket, which is run at once (it only
// calls Admit), and shutdown() once that loop has ended.
class BoundedHttpServer::Reception : public httplib::TaskQueue {
 public:
  explicit Reception(BoundedHttpServer& server) : server_(server) {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
    poller_ = std::thread([this] { Poll(); });
    for (size_t i = 0; i < std::max<size_t>(server_.limits_.workers, 1); ++i) {
      workers_.emplace_back([this] { Work(); });
    }
  }
  ~Reception() override {
    shutdown();
    server_.reception_ = nullptr;
    if (wake_[0] >= 0) ::close(wake_[0]);
    if (wake_[1] >= 0) ::close(wake_[1]);
  }

  void enqueue(std::function<void()> fn) override { fn(); }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    ready_cv_.notify_all();
    Wake();
    if (poller_.joinable()) poller_.join();
    for (auto& w : workers_) w.join();
    std::lock_guard lock(mu_);
    for (auto& c : waiting_) CloseConnection(c.fd);
    for (auto& c : ready_) CloseConnection(c.fd);
    waiting_.clear();
    ready_.clear();
  }

  // On the accept thread.
  void Admit(int sock) {
    int one = 1;
    // Responses go out as headers then body: without this, Nagle holds the body back for
    // the client's delayed ACK (40 ms on Linux).
    ::setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    {
      std::lock_guard lock(mu_);
      if (stopping_ || held() >= server_.limits_.max_connections) {
        if (stopping_ || waiting_.empty()) {
          CloseConnection(sock);  // every one held is being served
          return;
        }
        // Real clients send their request as they connect: the one that has waited
        // longest for its head is the likeliest to be holding a place.
        CloseConnection(waiting_.front().fd);
        waiting_.erase(waiting_.begin());
      }
      waiting_.push_back(Conn{sock, "", 0, Clock::now() + server_.limits_.head_timeout});
    }
    Wake();
  }

  size_t connections() const {
    std::lock_guard lock(mu_);
    return held();
  }

 private:
  struct Conn {
    int fd;
    std::string buffered;  // the head so far
    size_t served;         // requests answered on it
    Clock::time_point deadline;
  };

  size_t held() const { return waiting_.size() + ready_.size() + serving_; }

  void Wake() {
    char byte = 1;
    if (wake_[1] >= 0) (void)::write(wake_[1], &byte, 1);
  }

  // The reception thread: reads heads, drops what is late, hands on what is complete.
  void Poll() {
    std::vector<pollfd> fds;
    while (true) {
      // Every change the reception must see (a new or returned connection, a stop) writes
      // the wake pipe, so with nothing waiting for its head it sleeps: an idle agent uses
      // no CPU.
      int timeout_ms = wake_[0] >= 0 ? -1 : kReceptionTickMs;
      fds.clear();
      fds.push_back(pollfd{wake_[0], POLLIN, 0});
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        const Clock::time_point now = Clock::now();
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
      std::lock_guard lock(mu_);
      if (stopping_) return;
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        // Found by descriptor: one dropped meanwhile is gone (a number reused by a newer
        // connection only gets a read that would block).
        auto it = std::find_if(waiting_.begin(), waiting_.end(),
                               [&](const Conn& c) { return c.fd == fds[i].fd; });
        if (it != waiting_.end()) ReadHead(it);
      }
      const Clock::time_point now = Clock::now();
      std::erase_if(waiting_, [&](const Conn& c) {
        if (now < c.deadline) return false;
        CloseConnection(c.fd);
        return true;
      });
    }
  }

  // Under mu_: reads what `it` sent; a closed connection is dropped, a complete (or
  // full) head goes to the workers.
  void ReadHead(std::vector<Conn>::iterator it) {
    const size_t max = server_.limits_.max_head_bytes;
    char buf[kReadAhead];
    size_t room = std::min(sizeof buf, max - std::min(max, it->buffered.size()));
    ssize_t n = ::recv(it->fd, buf, std::max<size_t>(room, 1), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      CloseConnection(it->fd);
      waiting_.erase(it);
      return;
    }
    it->buffered.append(buf, static_cast<size_t>(n));
    if (!HasHead(it->buffered) && it->buffered.size() < max) return;
    ready_.push_back(std::move(*it));
    waiting_.erase(it);
    ready_cv_.notify_one();
  }

  // A worker: serves connections whose head is in, one request at a time; a connection
  // kept alive goes back to the reception unless the next request is already read.
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
        open = server_.ServeOne(c.fd, c.buffered, c.served++);
        if (!open || !HasHead(c.buffered)) break;
      }
      {
        std::lock_guard lock(mu_);
        --serving_;
        if (!open || stopping_) {
          CloseConnection(c.fd);
          continue;
        }
        c.deadline = Clock::now() + server_.limits_.idle_timeout;
        waiting_.push_back(std::move(c));
      }
      Wake();
    }
  }

  BoundedHttpServer& server_;
  mutable std::mutex mu_;
  std::condition_variable ready_cv_;
  std::vector<Conn> waiting_;  // by arrival: the oldest first
  std::deque<Conn> ready_;
  size_t serving_ = 0;
  bool stopping_ = false;
  int wake_[2] = {-1, -1};
  std::thread poller_;
  std::vector<std::thread> workers_;
};

BoundedHttpServer::BoundedHttpServer(HttpLimits limits) : limits_(limits) {
  new_task_queue = [this]() -> httplib::TaskQueue* {
    auto* reception = new Reception(*this);
    reception_ = reception;
    return reception;
  };
}

void BoundedHttpServer::CloseConnectionAfterResponse() { t_close_after_response = true; }

size_t BoundedHttpServer::connections() const {
  Reception* r = reception_;
  return r != nullptr ? r->connections() : 0;
}

bool BoundedHttpServer::process_and_close_socket(socket_t sock) {
  Reception* reception = reception_;
  if (reception == nullptr) {
    CloseConnection(sock);
    return false;
  }
  reception->Admit(sock);
  return true;
}

bool BoundedHttpServer::ServeOne(int sock, std::string& buffered, size_t served) {
  // A head that filled its budget without ending is read no further: httplib then
  // answers 400 from what it has.
  const size_t budget =
      HasHead(buffered) ? limits_.max_head_bytes + limits_.max_body_bytes : buffered.size();
  BoundedStream stream(sock, ToMillis(read_timeout_sec_, read_timeout_usec_),
                       ToMillis(write_timeout_sec_, write_timeout_usec_), std::move(buffered));
  stream.StartRequest(budget);
  t_close_after_response = false;
  const bool last = served + 1 >= keep_alive_max_count_;
  bool closed_by_client = false;
  const bool ok = process_request(stream, last, closed_by_client, nullptr);
  buffered = stream.TakeBuffered();
  const bool keep = ok && !last && !closed_by_client && !stream.exhausted() &&
                    !t_close_after_response && svr_sock_ != INVALID_SOCKET;
  t_close_after_response = false;
  return keep;
}

}  // namespace tether::agent
