// nfq_delay: an IP-layer delay line for the test bed, because this kernel has no sch_netem.
//
//   nfq_delay --queue N --delay-ms D [--max-held P]
//
// Binds NFQUEUE queue N in the calling network namespace (an iptables rule such as
// `iptables -t raw -A PREROUTING -i VETH -j NFQUEUE --queue-num N` sends packets there) and gives
// every packet NF_ACCEPT D ms after it arrived. Unlike delay_relay it does not end TCP: the peers
// keep one end-to-end connection, so their handshakes, windows, RTT estimates and congestion
// control all see the delay, as over a long path.
//
// Only packet metadata is copied to user space (NFQNL_COPY_META): the packet itself waits in
// the kernel until its verdict; GSO packets are queued whole (NFQA_CFG_F_GSO). Verdicts go
// out by packet id in arrival order, which with one fixed delay is also release order (a FIFO
// is the time-ordered queue). At most --max-held packets (default 65536, also the kernel
// queue's length) wait at once; beyond that the kernel drops them (no fail-open), as it does
// when the socket buffer is full. On exit it prints its own counters and the kernel's drop
// counters for the queue.
//
// Single-threaded: poll on the netlink socket, a timerfd armed at the earliest release time,
// and a signalfd for SIGTERM/SIGINT, after which it accepts everything held and exits 0.
// Messages go to stderr: "nfq_delay: ready queue N delay D ms" once bound, and counters on
// exit.

// <arpa/inet.h> (glibc's netinet/in.h) before the kernel headers, which then skip their own
// copies of its definitions.
#include <arpa/inet.h>
// clang-format off
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
// clang-format on
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>

namespace {

constexpr int64_t kNsPerMs = 1'000'000;
// Netlink receive buffer: bursts of a fast TCP stream queue many packets' metadata at once.
constexpr int kRcvBufBytes = 64 << 20;
// Messages read per poll wake-up, so timers and signals are never starved.
constexpr int kReadsPerWake = 256;

struct Options {
  int queue = -1;
  int64_t delay_ms = -1;
  uint32_t max_held = 65536;
};

struct Held {
  uint32_t id;
  int64_t release_ns;
};

struct State {
  std::deque<Held> held;
  uint32_t max_held = 0;
  int64_t delay_ns = 0;
  uint64_t received = 0;
  uint64_t accepted = 0;
  uint64_t dropped = 0;  // by us, over max_held
  // Verdicts the kernel refused (the socket full): the packet stays queued in the kernel.
  uint64_t verdict_errors = 0;
  nfq_q_handle* qh = nullptr;
};

int64_t NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr, "nfq_delay: %s\nusage: nfq_delay --queue N --delay-ms D [--max-held P]\n",
               why.c_str());
  std::exit(2);
}

int64_t ParseInt(const std::string& flag, const char* value, int64_t lo, int64_t hi) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < lo || v > hi) {
    Usage("bad value for " + flag + ": " + value);
  }
  return v;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Usage("missing value for " + flag);
    const char* value = argv[i + 1];
    if (flag == "--queue") {
      o.queue = static_cast<int>(ParseInt(flag, value, 0, 65535));
    } else if (flag == "--delay-ms") {
      o.delay_ms = ParseInt(flag, value, 0, 60'000);
    } else if (flag == "--max-held") {
      o.max_held = static_cast<uint32_t>(ParseInt(flag, value, 1, 1 << 20));
    } else {
      Usage("unknown option " + flag);
    }
  }
  if (o.queue < 0 || o.delay_ms < 0) Usage("--queue and --delay-ms are required");
  return o;
}

int OnPacket(nfq_q_handle* qh, nfgenmsg* /*msg*/, nfq_data* data, void* arg) {
  auto* st = static_cast<State*>(arg);
  nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(data);
  if (ph == nullptr) return 0;
  const uint32_t id = ntohl(ph->packet_id);
  ++st->received;
  if (st->held.size() >= st->max_held) {
    ++st->dropped;
    nfq_set_verdict(qh, id, NF_DROP, 0, nullptr);
    return 0;
  }
  st->held.push_back({id, NowNs() + st->delay_ns});
  return 0;
}

// NF_ACCEPT for every packet due by `now`.
void Release(State* st, int64_t now) {
  while (!st->held.empty() && st->held.front().release_ns <= now) {
    if (nfq_set_verdict(st->qh, st->held.front().id, NF_ACCEPT, 0, nullptr) < 0) {
      ++st->verdict_errors;
    } else {
      ++st->accepted;
    }
    st->held.pop_front();
  }
}

// The kernel's counters of `queue` in this namespace (/proc/net/netfilter/nfnetlink_queue:
// number, port id, waiting, copy mode, copy range, dropped for a full queue, dropped for a
// full socket, last id, 1), or false if the line is missing.
bool KernelDrops(int queue, unsigned long long* queue_full, unsigned long long* socket_full) {
  FILE* f = std::fopen("/proc/net/netfilter/nfnetlink_queue", "r");
  if (f == nullptr) return false;
  bool found = false;
  unsigned number = 0, portid = 0, waiting = 0, mode = 0, range = 0;
  unsigned long long full = 0, user = 0;
  for (int i = 0; i < 65536 && !found; ++i) {
    int n = std::fscanf(f, "%u %u %u %u %u %llu %llu %*u %*u", &number, &portid, &waiting, &mode,
                        &range, &full, &user);
    if (n != 7) break;
    found = static_cast<int>(number) == queue;
  }
  std::fclose(f);
  if (found) {
    *queue_full = full;
    *socket_full = user;
  }
  return found;
}

void ArmTimer(int tfd, const State& st) {
  itimerspec its{};
  if (!st.held.empty()) {
    const int64_t at = st.held.front().release_ns;
    its.it_value.tv_sec = at / 1'000'000'000;
    its.it_value.tv_nsec = at % 1'000'000'000;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  }
  ::timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);  // zero: disarmed
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = ParseArgs(argc, argv);
  State st;
  st.max_held = opt.max_held;
  st.delay_ns = opt.delay_ms * kNsPerMs;

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  const int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  const int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (sfd < 0 || tfd < 0) {
    std::fprintf(stderr, "nfq_delay: signalfd/timerfd: %s\n", std::strerror(errno));
    return 1;
  }

  nfq_handle* h = nfq_open();
  if (h == nullptr) {
    std::fprintf(stderr, "nfq_delay: nfq_open: %s (needs CAP_NET_ADMIN and nfnetlink_queue)\n",
                 std::strerror(errno));
    return 1;
  }
  st.qh = nfq_create_queue(h, static_cast<uint16_t>(opt.queue), &OnPacket, &st);
  if (st.qh == nullptr) {
    std::fprintf(stderr, "nfq_delay: cannot bind queue %d: %s (another process holds it?)\n",
                 opt.queue, std::strerror(errno));
    nfq_close(h);
    return 1;
  }
  if (nfq_set_mode(st.qh, NFQNL_COPY_META, 0) < 0) {
    std::fprintf(stderr, "nfq_delay: set mode: %s\n", std::strerror(errno));
    return 1;
  }
  if (nfq_set_queue_maxlen(st.qh, opt.max_held) < 0) {
    std::fprintf(stderr, "nfq_delay: set queue length: %s\n", std::strerror(errno));
    return 1;
  }
  // Tell us when the kernel drops (ENOBUFS) rather than failing silently; no fail-open: an
  // overloaded line drops, as a router would.
  (void)nfq_set_queue_flags(st.qh, NFQA_CFG_F_FAIL_OPEN, 0);
  // GSO packets stay whole (one verdict per up-to-64 KiB burst, as a TSO NIC sends them)
  // instead of being segmented in software before they are queued.
  (void)nfq_set_queue_flags(st.qh, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO);
  const int fd = nfq_fd(h);
  int rcvbuf = kRcvBufBytes;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

  std::fprintf(stderr, "nfq_delay: ready queue %d delay %lld ms\n", opt.queue,
               static_cast<long long>(opt.delay_ms));
  std::fflush(stderr);

  uint64_t kernel_losses = 0;  // ENOBUFS: the netlink socket overflowed, packets dropped
  alignas(8) static char buf[65536];
  bool stop = false;
  while (!stop) {
    pollfd pfds[3] = {{fd, POLLIN, 0}, {tfd, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (::poll(pfds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "nfq_delay: poll: %s\n", std::strerror(errno));
      break;
    }
    if (pfds[2].revents & POLLIN) stop = true;
    if (pfds[0].revents & POLLIN) {
      for (int i = 0; i < kReadsPerWake; ++i) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
          nfq_handle_packet(h, buf, static_cast<int>(n));
          continue;
        }
        if (n < 0 && errno == ENOBUFS) {
          ++kernel_losses;
          continue;
        }
        break;  // EAGAIN, or an error poll reports again
      }
    }
    if (pfds[1].revents & POLLIN) {
      uint64_t expirations = 0;
      (void)::read(tfd, &expirations, sizeof expirations);
    }
    Release(&st, NowNs());
    ArmTimer(tfd, st);
  }
  Release(&st, INT64_MAX);  // let the held packets go rather than strand them
  unsigned long long queue_full = 0, socket_full = 0;
  if (KernelDrops(opt.queue, &queue_full, &socket_full)) {
    std::fprintf(stderr,
                 "nfq_delay: the kernel dropped %llu packets for a full queue, %llu for a full "
                 "socket\n",
                 queue_full, socket_full);
  }
  std::fprintf(
      stderr,
      "nfq_delay: stopped: %llu packets, %llu accepted, %llu dropped over the limit, "
      "%llu netlink overflows (the kernel dropped those), %llu failed verdicts\n",
      static_cast<unsigned long long>(st.received), static_cast<unsigned long long>(st.accepted),
      static_cast<unsigned long long>(st.dropped), static_cast<unsigned long long>(kernel_losses),
      static_cast<unsigned long long>(st.verdict_errors));
  nfq_destroy_queue(st.qh);
  nfq_close(h);
  return 0;
}
