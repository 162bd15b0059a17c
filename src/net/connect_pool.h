// Outgoing connections made without blocking the event loop. Name resolution
// (getaddrinfo) blocks, so a few worker threads resolve names, in order; an address
// written as a number needs none. The connects themselves are non-blocking sockets the
// loop watches, each job with its own deadline: a destination that drops SYNs holds a
// descriptor and a timer until its timeout, never a thread, so any number of blackholed
// targets leave a connect to a live one as fast as ever.
//
// A name with several addresses is tried in turn, the next one started when the last has
// failed or has not answered within kNextAddressDelay (the earlier ones stay in the race:
// RFC 8305's "happy eyeballs", without its family interleaving); the first to connect
// wins and the others are closed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "net/address_scope.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "net/wake_pipe.h"

namespace tether::net {

// Workers: names resolved at once; the rest wait in order. A resolver that hangs holds
// one for as long as getaddrinfo does (its own timeouts, seconds); connects need none.
inline constexpr int kResolveWorkers = 4;
// Jobs in progress (resolving, waiting to resolve or connecting) beyond this are refused
// at once: a flood of requests must not grow the queue, or the descriptors, without bound.
inline constexpr size_t kMaxQueuedConnects = 1024;
// How long one address may stay unanswered before the next one is tried beside it
// (RFC 8305's recommended Connection Attempt Delay).
inline constexpr std::chrono::milliseconds kNextAddressDelay{250};
// Addresses of one name tried at most: a resolver answer with dozens must not open dozens
// of sockets for one job.
inline constexpr size_t kMaxAddressesPerConnect = 8;

class ConnectPool {
 public:
  using JobId = uint64_t;
  // Runs on the loop thread with a connected, non-blocking socket or why not.
  using Done = std::function<void(Result<UniqueFd>)>;
  // Resolves a name to the addresses to try, in order. Runs on a worker thread and may
  // block. The real one is net::ResolveTcp; tests give a fake.
  using Resolver =
      std::function<Result<std::vector<SocketAddress>>(const std::string& host, uint16_t port)>;

  explicit ConnectPool(EventLoop& loop, Resolver resolver = ResolveTcp);
  // Closes every connect in progress (their callbacks do not run); waits for the workers'
  // resolutions in flight (bounded by getaddrinfo's own timeouts).
  ~ConnectPool();
  ConnectPool(const ConnectPool&) = delete;
  ConnectPool& operator=(const ConnectPool&) = delete;

  // Connects to host:port (TCP, TCP_NODELAY; only to addresses `reach` allows) within
  // `timeout` (0: the system's own connect timeout) or, when `path` is set, to that unix
  // socket. `done` runs later on the loop thread, never inside this call. Loop thread only.
  JobId Connect(std::string host, uint16_t port, std::string path,
                std::chrono::milliseconds timeout, Done done, Reach reach = Reach::kAll);
  // The caller is gone: its callback will not run, and its sockets are closed.
  void Cancel(JobId id);

  // Jobs in progress (for tests and status).
  size_t pending() const { return jobs_.size(); }

 private:
  struct Job {  // loop thread only
    Done done;
    std::string host;
    uint16_t port = 0;
    Reach reach = Reach::kAll;
    std::vector<SocketAddress> addresses;
    size_t next = 0;                      // the next address to try
    std::vector<UniqueFd> attempts;       // connects in flight
    int last_error = 0;                   // errno of the last address that failed
    std::optional<AddressScope> skipped;  // the first address `reach` did not allow
    bool tried = false;                   // some address was allowed
    EventLoop::TimerId deadline = 0;
    EventLoop::TimerId next_timer = 0;
  };
  struct Lookup {  // a name for the workers
    JobId id;
    std::string host;
    uint16_t port;
  };
  struct Resolved {
    JobId id;
    Result<std::vector<SocketAddress>> addresses;
  };

  void Work();
  void OnWake();
  // The job's addresses are known: start on them.
  void StartConnecting(JobId id, std::vector<SocketAddress> addresses);
  // Starts the next allowed address, or ends the job when none is left and none is in
  // flight.
  void TryNext(JobId id);
  void OnAttempt(JobId id, int fd);
  // Ends job `id` with `result`: closes the rest, runs its callback (on a later turn of
  // the loop when `later`).
  void Finish(JobId id, Result<UniqueFd> result);
  void FinishLater(JobId id, Result<UniqueFd> result);
  void Drop(Job& job);

  EventLoop& loop_;
  Resolver resolver_;
  WakePipe wake_;
  std::vector<std::thread> workers_;
  std::unordered_map<JobId, Job> jobs_;  // loop thread only
  JobId next_id_ = 1;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Lookup> lookups_;      // guarded by mu_
  std::vector<Resolved> resolved_;  // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
};

}  // namespace tether::net
