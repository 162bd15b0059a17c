// Outgoing connections made off the event loop. Name resolution (getaddrinfo) blocks,
// and a connect to a far or dead host can take seconds: done on the loop they would
// freeze every forward. A few worker threads take the jobs in order; each result comes
// back to the loop through a pipe and is handed to the job's callback there.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "net/address_scope.h"
#include "net/event_loop.h"
#include "net/wake_pipe.h"

namespace tether::net {

// Workers: connects in flight at once; the rest wait in order.
inline constexpr int kConnectWorkers = 4;
// Jobs waiting beyond this are refused at once: a flood of requests must not grow the
// queue without bound.
inline constexpr size_t kMaxQueuedConnects = 1024;

class ConnectPool {
 public:
  using JobId = uint64_t;
  // Runs on the loop thread with a connected, non-blocking socket or why not.
  using Done = std::function<void(Result<UniqueFd>)>;

  explicit ConnectPool(EventLoop& loop);
  // Stops the workers; waits for the connects in flight (bounded by their timeouts).
  ~ConnectPool();
  ConnectPool(const ConnectPool&) = delete;
  ConnectPool& operator=(const ConnectPool&) = delete;

  // Connects to host:port (TCP, TCP_NODELAY; only to addresses `reach` allows) or, when
  // `path` is set, to that unix socket. `done` runs later on the loop thread, never inside
  // this call. Loop thread only.
  JobId Connect(std::string host, uint16_t port, std::string path,
                std::chrono::milliseconds timeout, Done done, Reach reach = Reach::kAll);
  // The caller is gone: its callback will not run (a late socket is closed).
  void Cancel(JobId id);

 private:
  struct Job {
    JobId id;
    std::string host;
    uint16_t port;
    std::string path;
    std::chrono::milliseconds timeout;
    Reach reach;
  };
  struct Finished {
    JobId id;
    Result<UniqueFd> result;
  };
  void Work();
  void OnWake();

  EventLoop& loop_;
  WakePipe wake_;
  std::vector<std::thread> workers_;
  std::unordered_map<JobId, Done> callbacks_;  // loop thread only
  JobId next_id_ = 1;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;           // guarded by mu_
  std::vector<Finished> finished_;  // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
};

}  // namespace tether::net
