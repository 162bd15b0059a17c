#include "net/connect_pool.h"

#include "net/socket.h"

namespace tether::net {

ConnectPool::ConnectPool(EventLoop& loop) : loop_(loop) {
  if (wake_.valid()) loop_.Watch(wake_.read_fd(), kReadable, [this](unsigned) { OnWake(); });
}

ConnectPool::~ConnectPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  if (wake_.valid()) loop_.Unwatch(wake_.read_fd());
}

ConnectPool::JobId ConnectPool::Connect(std::string host, uint16_t port, std::string path,
                                        std::chrono::milliseconds timeout, Done done, Reach reach) {
  JobId id = next_id_++;
  callbacks_.emplace(id, std::move(done));
  bool refused = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= kMaxQueuedConnects || !wake_.valid()) {
      refused = true;
      finished_.push_back(
          Finished{id, MakeError(ErrorCode::kConnect, "too many connections waiting to be made")});
    } else {
      queue_.push_back(Job{id, std::move(host), port, std::move(path), timeout, reach});
      if (workers_.size() < static_cast<size_t>(kConnectWorkers) && queue_.size() > 0) {
        workers_.emplace_back([this] { Work(); });
      }
    }
  }
  if (refused) {
    wake_.Wake();
  } else {
    cv_.notify_one();
  }
  return id;
}

void ConnectPool::Cancel(JobId id) { callbacks_.erase(id); }

void ConnectPool::Work() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Result<UniqueFd> result = job.path.empty()
                                  ? ConnectTcp(job.host, job.port, job.timeout, job.reach)
                                  : ConnectUnix(job.path);
    if (result.ok()) {
      (void)SetNonBlocking(result->get());
      if (job.path.empty()) SetNoDelay(result->get());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      finished_.push_back(Finished{job.id, std::move(result)});
    }
    wake_.Wake();
  }
}

void ConnectPool::OnWake() {
  wake_.Drain();
  std::vector<Finished> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(finished_);
  }
  for (auto& f : done) {
    auto it = callbacks_.find(f.id);
    if (it == callbacks_.end()) continue;  // cancelled: the socket closes here
    Done callback = std::move(it->second);
    callbacks_.erase(it);
    callback(std::move(f.result));
  }
}

}  // namespace tether::net
