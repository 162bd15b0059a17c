// delay_relay: a user-space delay line for the test bed, because this kernel has no sch_netem.
//
//   delay_relay --listen ADDR:PORT --connect ADDR:PORT --delay-ms N [--rate-mbit R]
//               [--buffer-mib M] [--queue-ms Q] [--sockbuf-bytes B] [--max-conns C] [--quiet]
//
// Accepts TCP connections on --listen (port 0: any; the bound port is printed) and relays each
// to --connect. Every byte, and the end of stream, is held for N ms in each direction before it
// is passed on, so a round trip through the relay takes RTT + 2N. Byte order is kept; a peer's
// FIN is passed on as shutdown(SHUT_WR) once the data before it and N ms have gone by; a reset
// from a peer, or a refused connect to the target, reaches the other side as a RST N ms later;
// a failed write ends both sides with a RST at once.
//
// With --rate-mbit R each direction is a shared link of R Mbit/s: bytes are serialized at R
// (FIFO over all connections) and then delayed N ms, and the relay stops reading while more
// than Q ms (--queue-ms, default 50) of data waits for the link: a router queue, not 64 MiB of
// bufferbloat.
//
// What it does not emulate: it terminates TCP. The peers' TCP handshakes complete at once with
// the relay and their TCP windows see only the local hop; what the delay shapes is everything
// end to end above TCP (SSH's channel windows, keepalive replies, request/response timing).
//
// Buffering: up to --buffer-mib (default 64) MiB per direction per connection, enough for
// 5 Gbit/s at 100 ms one-way; at most 2 GiB over all connections; then it stops reading.
//
// Single-threaded: epoll, level-triggered, plus one timerfd armed at the earliest release
// time (a min-heap of release times). Stops on SIGTERM/SIGINT (the default action).
// Messages go to stderr: "delay_relay: listening on ADDR:PORT ..." once bound, and one line
// per connection opened and closed (unless --quiet).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

constexpr int64_t kNsPerMs = 1'000'000;
// Buffer blocks: big enough that a bulk transfer needs few syscalls per MiB.
constexpr size_t kBlockBytes = size_t{1} << 20;
// Freed blocks kept for reuse instead of returned to malloc.
constexpr size_t kMaxPooledBlocks = 128;
// Release marks closer than this are merged (the earlier bytes wait for the later time), so a
// stream of tiny reads cannot grow the mark queue beyond delay / kMarkMergeNs entries.
constexpr int64_t kMarkMergeNs = 50'000;
// At most this much buffered over all connections; then every connection stops reading.
constexpr size_t kTotalBufferCap = size_t{2} << 30;
// Per event: at most this many reads from one socket (fairness between connections) and this
// many writes to one socket, so that no loop runs unbounded.
constexpr int kReadsPerEvent = 16;
constexpr int kWritesPerFlush = 64;
constexpr int kAcceptsPerEvent = 64;
constexpr int kMaxEvents = 256;
constexpr int kMaxIov = 64;

int64_t NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Options {
  sockaddr_storage listen_addr{};
  socklen_t listen_len = 0;
  sockaddr_storage connect_addr{};
  socklen_t connect_len = 0;
  std::string listen_text;
  std::string connect_text;
  int64_t delay_ns = 0;
  double rate_mbit = 0;  // 0: unlimited
  size_t buffer_bytes = size_t{64} << 20;
  int64_t queue_ns = 50 * kNsPerMs;
  int sockbuf_bytes = 0;  // 0: the kernel's autotuning (up to net.ipv4.tcp_[rw]mem maximums)
  size_t max_conns = 1024;
  bool quiet = false;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "delay_relay: %s\n"
               "usage: delay_relay --listen ADDR:PORT --connect ADDR:PORT --delay-ms N\n"
               "                   [--rate-mbit R] [--buffer-mib M] [--queue-ms Q]\n"
               "                   [--sockbuf-bytes B] [--max-conns C] [--quiet]\n",
               why);
  std::exit(2);
}

// "1.2.3.4:80" or "[::1]:80".
bool ParseAddr(const std::string& text, sockaddr_storage* out, socklen_t* len) {
  std::string host;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  char* end = nullptr;
  long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535) return false;
  std::memset(out, 0, sizeof *out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(p));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(p));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::string AddrText(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    port = ntohs(v4->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&addr);
  ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
  port = ntohs(v6->sin6_port);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

double ParseNumber(const char* flag, const char* value, double min, double max) {
  char* end = nullptr;
  double v = std::strtod(value, &end);
  if (end == value || *end != '\0' || !(v >= min && v <= max)) {
    Usage((std::string("bad value for ") + flag + ": " + value).c_str());
  }
  return v;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  bool have_listen = false;
  bool have_connect = false;
  bool have_delay = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--quiet") {
      o.quiet = true;
      continue;
    }
    if (i + 1 >= argc) Usage(("missing value for " + flag).c_str());
    const char* value = argv[++i];
    if (flag == "--listen") {
      if (!ParseAddr(value, &o.listen_addr, &o.listen_len)) Usage("bad --listen address");
      o.listen_text = value;
      have_listen = true;
    } else if (flag == "--connect") {
      if (!ParseAddr(value, &o.connect_addr, &o.connect_len)) Usage("bad --connect address");
      o.connect_text = value;
      have_connect = true;
    } else if (flag == "--delay-ms") {
      o.delay_ns = static_cast<int64_t>(ParseNumber("--delay-ms", value, 0, 60'000) * kNsPerMs);
      have_delay = true;
    } else if (flag == "--rate-mbit") {
      o.rate_mbit = ParseNumber("--rate-mbit", value, 0, 1'000'000);
    } else if (flag == "--buffer-mib") {
      o.buffer_bytes = static_cast<size_t>(ParseNumber("--buffer-mib", value, 1, 1024)) << 20;
    } else if (flag == "--queue-ms") {
      o.queue_ns = static_cast<int64_t>(ParseNumber("--queue-ms", value, 1, 60'000) * kNsPerMs);
    } else if (flag == "--sockbuf-bytes") {
      o.sockbuf_bytes = static_cast<int>(ParseNumber("--sockbuf-bytes", value, 0, 1 << 30));
    } else if (flag == "--max-conns") {
      o.max_conns = static_cast<size_t>(ParseNumber("--max-conns", value, 1, 100'000));
    } else {
      Usage(("unknown option " + flag).c_str());
    }
  }
  if (!have_listen || !have_connect || !have_delay) {
    Usage("--listen, --connect and --delay-ms are required");
  }
  return o;
}

// ---- buffers

struct Block {
  std::unique_ptr<char[]> data;
  size_t begin = 0;  // first unsent byte
  size_t end = 0;    // one past the last byte read
};

class BlockPool {
 public:
  std::unique_ptr<char[]> Get() {
    if (free_.empty()) return std::make_unique<char[]>(kBlockBytes);
    auto b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void Put(std::unique_ptr<char[]> b) {
    if (free_.size() < kMaxPooledBlocks) free_.push_back(std::move(b));
  }

 private:
  std::vector<std::unique_ptr<char[]>> free_;
};

// One direction of a shared link (--rate-mbit): when it is free to send the next byte.
struct Link {
  int64_t free_ns = 0;
};

// Bytes up to `end` (a count since the start of the stream) may go at `release_ns`.
struct Mark {
  uint64_t end;
  int64_t release_ns;
};

// One direction of one connection: read from src, hold, write to dst.
struct Direction {
  const char* name = "";
  int src = -1;
  int dst = -1;
  Link* link = nullptr;
  std::deque<Block> blocks;
  std::deque<Mark> marks;
  uint64_t read_total = 0;  // bytes read from src
  uint64_t released = 0;    // bytes whose release time has come
  uint64_t sent = 0;        // bytes written to dst
  bool src_eof = false;     // read returned 0 or an error
  bool src_reset = false;   // ... an error: pass it on as a RST, not a FIN
  int64_t eof_release_ns = 0;
  bool shut = false;          // shutdown(dst, SHUT_WR) done
  bool dst_blocked = false;   // the last write would have blocked
  int64_t scheduled_ns = -1;  // a heap entry exists for this time

  uint64_t buffered() const { return read_total - sent; }
};

struct Conn {
  uint64_t id = 0;
  int client = -1;
  int server = -1;
  bool connecting = true;
  bool upstream_failed = false;  // connect failed: the client gets a delayed RST
  Direction up;                  // client -> server
  Direction down;                // server -> client
  uint32_t client_events = 0;    // what epoll watches (0: not registered)
  uint32_t server_events = 0;
};

class Relay {
 public:
  explicit Relay(Options o) : o_(std::move(o)) {}
  int Run();

 private:
  static uint64_t Tag(uint64_t id, bool server_side) { return id * 2 + (server_side ? 1 : 0); }
  static constexpr uint64_t kListenTag = 0;
  static constexpr uint64_t kTimerTag = 1;

  void TuneSocket(int fd);
  void AcceptSome();
  void HandleEvent(Conn& c, bool server_side, uint32_t events, int64_t now);
  bool WantRead(const Direction& d, int64_t now) const;
  void ReadSome(Conn& c, Direction& d, int64_t now);
  // Releases due bytes, writes what it can, passes on a due EOF. False if the connection was
  // aborted (then `c` is gone).
  bool Flush(Conn& c, Direction& d, int64_t now);
  // Flushes both directions, re-arms epoll and the timer heap, and closes a finished
  // connection. `c` may be gone afterwards.
  void Update(Conn& c, int64_t now);
  void Schedule(Conn& c, Direction& d, int64_t now);
  void SetInterest(int fd, uint64_t tag, uint32_t* current, uint32_t wanted);
  void Close(Conn& c, bool reset, const char* why);
  void FreeBlocks(Direction& d);
  void ArmTimer();
  void UpdateListener();

  Options o_;
  int epoll_ = -1;
  int listen_ = -1;
  int timer_ = -1;
  bool listening_ = false;
  int64_t armed_ns_ = -1;
  uint64_t next_id_ = 1;
  size_t total_buffered_ = 0;
  mutable bool total_capped_ = false;  // some connection stopped reading at kTotalBufferCap
  Link up_link_;
  Link down_link_;
  BlockPool pool_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  using Wake = std::pair<int64_t, uint64_t>;  // (time, connection id)
  std::priority_queue<Wake, std::vector<Wake>, std::greater<>> heap_;
};

void Relay::TuneSocket(int fd) {
  int one = 1;
  // The relay must not add Nagle delays of its own: segments go on as they arrive.
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (o_.sockbuf_bytes > 0) {
    int b = o_.sockbuf_bytes;
    // FORCE (root) passes net.core.[rw]mem_max, which a child namespace cannot raise.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &b, sizeof b) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof b);
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &b, sizeof b) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof b);
    }
  }
}

void Relay::SetInterest(int fd, uint64_t tag, uint32_t* current, uint32_t wanted) {
  if (*current == wanted) return;
  // An fd that needs no event is removed: epoll reports EPOLLHUP/EPOLLERR whatever the mask,
  // and a half-closed socket would otherwise wake the loop without end.
  if (wanted == 0) {
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  } else {
    epoll_event ev{};
    ev.events = wanted;
    ev.data.u64 = tag;
    ::epoll_ctl(epoll_, *current == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
  }
  *current = wanted;
}

void Relay::UpdateListener() {
  bool want = conns_.size() < o_.max_conns;
  if (want == listening_) return;
  if (want) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, listen_, &ev);
  } else {
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, listen_, nullptr);
  }
  listening_ = want;
}

void Relay::AcceptSome() {
  for (int i = 0; i < kAcceptsPerEvent && conns_.size() < o_.max_conns; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    int fd = ::accept4(listen_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        std::fprintf(stderr, "delay_relay: accept: %s\n", std::strerror(errno));
      }
      break;
    }
    TuneSocket(fd);
    int up = ::socket(o_.connect_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (up < 0) {
      std::fprintf(stderr, "delay_relay: socket: %s\n", std::strerror(errno));
      ::close(fd);
      continue;
    }
    TuneSocket(up);
    int r = ::connect(up, reinterpret_cast<const sockaddr*>(&o_.connect_addr), o_.connect_len);
    const int connect_errno = (r != 0 && errno != EINPROGRESS) ? errno : 0;
    auto c = std::make_unique<Conn>();
    c->id = ++next_id_;  // ids start at 2: tags 0..3 never collide with the listener and timer
    c->client = fd;
    c->server = up;
    c->connecting = (r != 0);
    c->up.name = "up";
    c->up.src = fd;
    c->up.dst = up;
    c->up.link = &up_link_;
    c->down.name = "down";
    c->down.src = up;
    c->down.dst = fd;
    c->down.link = &down_link_;
    if (!o_.quiet) {
      std::fprintf(stderr, "delay_relay: conn %llu: open from %s\n",
                   static_cast<unsigned long long>(c->id), AddrText(peer).c_str());
    }
    const int64_t now = NowNs();
    if (connect_errno != 0) {  // refused at once: a delayed RST, as for a late refusal
      std::fprintf(stderr, "delay_relay: conn %llu: connect %s: %s\n",
                   static_cast<unsigned long long>(c->id), o_.connect_text.c_str(),
                   std::strerror(connect_errno));
      c->connecting = false;
      c->upstream_failed = true;
      c->down.src_eof = true;
      c->down.src_reset = true;
      c->down.eof_release_ns = now + o_.delay_ns;
    }
    Conn& ref = *c;
    conns_.emplace(c->id, std::move(c));
    Update(ref, now);
  }
  UpdateListener();
}

bool Relay::WantRead(const Direction& d, int64_t now) const {
  if (d.src_eof) return false;
  if (d.buffered() >= o_.buffer_bytes) return false;
  if (total_buffered_ >= kTotalBufferCap) {
    total_capped_ = true;
    return false;
  }
  if (o_.rate_mbit > 0 && d.link->free_ns - now > o_.queue_ns) return false;
  return true;
}

void Relay::ReadSome(Conn& c, Direction& d, int64_t now) {
  (void)c;
  for (int i = 0; i < kReadsPerEvent && WantRead(d, now); ++i) {
    if (d.blocks.empty() || d.blocks.back().end == kBlockBytes) {
      Block b;
      b.data = pool_.Get();
      d.blocks.push_back(std::move(b));
    }
    Block& tail = d.blocks.back();
    size_t room = std::min(kBlockBytes - tail.end, o_.buffer_bytes - d.buffered());
    ssize_t n = ::read(d.src, tail.data.get() + tail.end, room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // Serialize on the link (if rated), then the propagation delay.
    int64_t depart = now;
    if (o_.rate_mbit > 0) {
      double bits = n > 0 ? static_cast<double>(n) * 8 : 0;
      int64_t start = std::max(now, d.link->free_ns);
      depart = start + static_cast<int64_t>(bits * 1000.0 / o_.rate_mbit);
      d.link->free_ns = depart;
    }
    int64_t release = depart + o_.delay_ns;
    if (!d.marks.empty()) release = std::max(release, d.marks.back().release_ns);
    if (n <= 0) {
      d.src_eof = true;
      d.src_reset = (n < 0);
      d.eof_release_ns = release;
      if (d.blocks.back().end == d.blocks.back().begin) {
        pool_.Put(std::move(d.blocks.back().data));
        d.blocks.pop_back();
      }
      break;
    }
    tail.end += static_cast<size_t>(n);
    d.read_total += static_cast<uint64_t>(n);
    total_buffered_ += static_cast<size_t>(n);
    if (!d.marks.empty() && release - d.marks.back().release_ns < kMarkMergeNs &&
        d.marks.back().release_ns > now) {
      d.marks.back().end = d.read_total;
      d.marks.back().release_ns = release;
    } else {
      d.marks.push_back({d.read_total, release});
    }
    if (static_cast<size_t>(n) < room) break;  // drained the socket for now
  }
}

bool Relay::Flush(Conn& c, Direction& d, int64_t now) {
  while (!d.marks.empty() && d.marks.front().release_ns <= now) {
    d.released = d.marks.front().end;
    d.marks.pop_front();
  }
  if (c.connecting) return true;
  if (c.upstream_failed && &d == &c.up) return true;  // nowhere to send it
  for (int i = 0; i < kWritesPerFlush && d.sent < d.released && !d.dst_blocked; ++i) {
    iovec iov[kMaxIov];
    int n_iov = 0;
    uint64_t want = d.released - d.sent;
    for (size_t b = 0; b < d.blocks.size() && n_iov < kMaxIov && want > 0; ++b) {
      size_t len = std::min<uint64_t>(d.blocks[b].end - d.blocks[b].begin, want);
      if (len == 0) continue;
      iov[n_iov].iov_base = d.blocks[b].data.get() + d.blocks[b].begin;
      iov[n_iov].iov_len = len;
      ++n_iov;
      want -= len;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n_iov);
    ssize_t n = ::sendmsg(d.dst, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      d.dst_blocked = true;
      break;
    }
    if (n < 0) {
      std::string why = std::string("write ") + d.name + ": " + std::strerror(errno);
      Close(c, /*reset=*/true, why.c_str());
      return false;
    }
    size_t left = static_cast<size_t>(n);
    d.sent += left;
    total_buffered_ -= left;
    while (left > 0 && !d.blocks.empty()) {
      Block& front = d.blocks.front();
      size_t take = std::min(left, front.end - front.begin);
      front.begin += take;
      left -= take;
      if (front.begin != front.end) continue;
      if (front.end == kBlockBytes || d.blocks.size() > 1) {
        pool_.Put(std::move(front.data));
        d.blocks.pop_front();
      } else {
        front.begin = front.end = 0;  // the only block, now empty: read into it from the start
      }
    }
  }
  if (d.src_eof && !d.shut && d.sent == d.read_total && now >= d.eof_release_ns) {
    if (d.src_reset) {
      std::string why = std::string("reset ") + d.name;
      Close(c, /*reset=*/true, why.c_str());
      return false;
    }
    ::shutdown(d.dst, SHUT_WR);
    d.shut = true;
  }
  return true;
}

void Relay::Schedule(Conn& c, Direction& d, int64_t now) {
  int64_t next = -1;
  if (!d.marks.empty()) {
    next = d.marks.front().release_ns;
  } else if (d.src_eof && !d.shut && d.eof_release_ns > now) {
    next = d.eof_release_ns;
  }
  // A rated link that stopped reading wakes the reader when its queue has room again.
  if (!d.src_eof && o_.rate_mbit > 0 && d.link->free_ns - now > o_.queue_ns) {
    int64_t resume = d.link->free_ns - o_.queue_ns;
    next = next < 0 ? resume : std::min(next, resume);
  }
  if (next > now && next != d.scheduled_ns) {
    heap_.emplace(next, c.id);
    d.scheduled_ns = next;
  }
}

void Relay::Update(Conn& c, int64_t now) {
  if (!Flush(c, c.up, now)) return;
  if (!Flush(c, c.down, now)) return;
  if (c.up.shut && c.down.shut) {
    Close(c, /*reset=*/false, "both sides done");
    return;
  }
  Schedule(c, c.up, now);
  Schedule(c, c.down, now);
  uint32_t client = 0;
  uint32_t server = 0;
  if (WantRead(c.up, now)) client |= EPOLLIN;
  if (c.down.dst_blocked) client |= EPOLLOUT;
  if (c.connecting) {
    server = EPOLLOUT;
  } else if (!c.upstream_failed) {
    if (WantRead(c.down, now)) server |= EPOLLIN;
    if (c.up.dst_blocked) server |= EPOLLOUT;
  }
  SetInterest(c.client, Tag(c.id, false), &c.client_events, client);
  SetInterest(c.server, Tag(c.id, true), &c.server_events, server);
}

void Relay::HandleEvent(Conn& c, bool server_side, uint32_t events, int64_t now) {
  if (server_side && c.connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c.server, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0 || (events & EPOLLOUT) == 0) {
      // Refused or reset: the client hears it as a RST one delay later, as it would hear the
      // server's answer to its SYN.
      if (!o_.quiet) {
        std::fprintf(stderr, "delay_relay: conn %llu: connect %s: %s\n",
                     static_cast<unsigned long long>(c.id), o_.connect_text.c_str(),
                     err != 0 ? std::strerror(err) : "hang-up");
      }
      c.connecting = false;
      c.upstream_failed = true;
      c.down.src_eof = true;
      c.down.src_reset = true;
      c.down.eof_release_ns = now + o_.delay_ns;
      Update(c, now);
      return;
    }
    c.connecting = false;
    Update(c, now);
    return;
  }
  Direction& reading = server_side ? c.down : c.up;
  Direction& writing = server_side ? c.up : c.down;
  // On an error or hang-up a write attempt surfaces it (and ends the connection) instead of
  // epoll reporting it again and again.
  if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) writing.dst_blocked = false;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ReadSome(c, reading, now);
  Update(c, now);
}

void Relay::FreeBlocks(Direction& d) {
  for (Block& b : d.blocks) pool_.Put(std::move(b.data));
  d.blocks.clear();
  total_buffered_ -= d.buffered();
}

void Relay::Close(Conn& c, bool reset, const char* why) {
  if (!o_.quiet) {
    std::fprintf(stderr, "delay_relay: conn %llu: closed (%s), up %llu bytes, down %llu bytes\n",
                 static_cast<unsigned long long>(c.id), why,
                 static_cast<unsigned long long>(c.up.sent),
                 static_cast<unsigned long long>(c.down.sent));
  }
  if (reset) {
    linger lg{1, 0};
    ::setsockopt(c.client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::setsockopt(c.server, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  ::close(c.client);  // also leaves the epoll set
  ::close(c.server);
  FreeBlocks(c.up);
  FreeBlocks(c.down);
  conns_.erase(c.id);  // destroys c
  UpdateListener();
}

void Relay::ArmTimer() {
  int64_t next = heap_.empty() ? 0 : heap_.top().first;
  if (next == armed_ns_) return;
  itimerspec its{};
  if (next > 0) {
    its.it_value.tv_sec = next / 1'000'000'000;
    its.it_value.tv_nsec = next % 1'000'000'000;
  }
  ::timerfd_settime(timer_, TFD_TIMER_ABSTIME, &its, nullptr);  // all zero: disarmed
  armed_ns_ = next;
}

int Relay::Run() {
  ::signal(SIGPIPE, SIG_IGN);
  listen_ = ::socket(o_.listen_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_ < 0) {
    std::fprintf(stderr, "delay_relay: socket: %s\n", std::strerror(errno));
    return 1;
  }
  int one = 1;
  ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Buffer sizes set before listen() also fix the window scale of accepted connections.
  TuneSocket(listen_);
  if (::bind(listen_, reinterpret_cast<const sockaddr*>(&o_.listen_addr), o_.listen_len) != 0 ||
      ::listen(listen_, 512) != 0) {
    std::fprintf(stderr, "delay_relay: listen %s: %s\n", o_.listen_text.c_str(),
                 std::strerror(errno));
    return 1;
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  ::getsockname(listen_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  timer_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (epoll_ < 0 || timer_ < 0) {
    std::fprintf(stderr, "delay_relay: epoll/timerfd: %s\n", std::strerror(errno));
    return 1;
  }
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.u64 = kTimerTag;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, timer_, &tev);
  UpdateListener();
  std::fprintf(
      stderr, "delay_relay: listening on %s, relaying to %s, delay %.3f ms each way, rate %s\n",
      AddrText(bound).c_str(), o_.connect_text.c_str(), static_cast<double>(o_.delay_ns) / kNsPerMs,
      o_.rate_mbit > 0 ? (std::to_string(o_.rate_mbit) + " Mbit/s").c_str() : "unlimited");

  epoll_event events[kMaxEvents];
  for (;;) {  // runs until a signal ends the process
    int n = ::epoll_wait(epoll_, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "delay_relay: epoll_wait: %s\n", std::strerror(errno));
      return 1;
    }
    int64_t now = NowNs();
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        AcceptSome();
        continue;
      }
      if (tag == kTimerTag) {
        uint64_t expirations = 0;
        ssize_t r = ::read(timer_, &expirations, sizeof expirations);
        (void)r;
        armed_ns_ = -1;
        continue;
      }
      auto it = conns_.find(tag / 2);
      if (it == conns_.end()) continue;  // closed earlier in this batch
      HandleEvent(*it->second, (tag & 1) != 0, events[i].events, now);
    }
    // Due releases. Bounded: every entry is popped once, and Update pushes only entries
    // later than `now`.
    now = NowNs();
    while (!heap_.empty() && heap_.top().first <= now) {
      uint64_t id = heap_.top().second;
      heap_.pop();
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      Conn& c = *it->second;
      // Only entries that came due are forgotten: resetting a future one would push it
      // again, and duplicates would multiply.
      if (c.up.scheduled_ns <= now) c.up.scheduled_ns = -1;
      if (c.down.scheduled_ns <= now) c.down.scheduled_ns = -1;
      Update(c, now);
    }
    // Connections that stopped reading at the global cap read again once it has room.
    if (total_capped_ && total_buffered_ < kTotalBufferCap) {
      total_capped_ = false;
      std::vector<uint64_t> ids;
      for (const auto& [id, conn] : conns_) ids.push_back(id);
      for (uint64_t id : ids) {
        auto it = conns_.find(id);
        if (it != conns_.end()) Update(*it->second, now);
      }
    }
    ArmTimer();
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  Relay relay(std::move(o));
  return relay.Run();
}
