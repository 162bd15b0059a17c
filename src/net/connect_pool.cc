#include "net/connect_pool.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace tether::net {

ConnectPool::ConnectPool(EventLoop& loop, Resolver resolver)
    : loop_(loop), resolver_(std::move(resolver)) {
  if (wake_.valid()) loop_.Watch(wake_.read_fd(), kReadable, [this](unsigned) { OnWake(); });
}

ConnectPool::~ConnectPool() {
  for (auto& [id, job] : jobs_) Drop(job);
  jobs_.clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    lookups_.clear();
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  if (wake_.valid()) loop_.Unwatch(wake_.read_fd());
}

ConnectPool::JobId ConnectPool::Connect(std::string host, uint16_t port, std::string path,
                                        std::chrono::milliseconds timeout, Done done, Reach reach) {
  JobId id = next_id_++;
  bool full = jobs_.size() >= kMaxQueuedConnects;
  Job& job = jobs_[id];
  job.done = std::move(done);
  job.host = host;
  job.port = port;
  job.reach = reach;
  if (full) {
    FinishLater(id, MakeError(ErrorCode::kConnect, "too many connections waiting to be made"));
    return id;
  }
  if (!path.empty()) {
    FinishLater(id, ConnectUnixNow(path));
    return id;
  }
  if (timeout.count() > 0) {
    job.deadline = loop_.AddTimer(timeout, [this, id] {
      auto it = jobs_.find(id);
      if (it == jobs_.end()) return;
      it->second.deadline = 0;
      Finish(id, ConnectFailure(it->second.host, it->second.port, ETIMEDOUT));
    });
  }
  if (auto numeric = NumericAddress(host, port)) {
    StartConnecting(id, {*numeric});
    return id;
  }
  if (!wake_.valid()) {
    FinishLater(id, MakeError(ErrorCode::kResolve, "no descriptor left to resolve " + host));
    return id;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    lookups_.push_back(Lookup{id, std::move(host), port});
    if (workers_.size() < static_cast<size_t>(kResolveWorkers)) {
      workers_.emplace_back([this] { Work(); });
    }
  }
  cv_.notify_one();
  return id;
}

void ConnectPool::Cancel(JobId id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Drop(it->second);
  jobs_.erase(it);  // a resolution still to come is dropped when it arrives
}

void ConnectPool::Work() {
  for (;;) {
    Lookup lookup;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !lookups_.empty(); });
      if (stopping_) return;
      lookup = std::move(lookups_.front());
      lookups_.pop_front();
    }
    auto addresses = resolver_(lookup.host, lookup.port);
    {
      std::lock_guard<std::mutex> lock(mu_);
      resolved_.push_back(Resolved{lookup.id, std::move(addresses)});
    }
    wake_.Wake();
  }
}

void ConnectPool::OnWake() {
  wake_.Drain();
  std::vector<Resolved> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(resolved_);
  }
  for (auto& r : done) {
    if (jobs_.find(r.id) == jobs_.end()) continue;  // cancelled while resolving
    if (!r.addresses.ok()) {
      Finish(r.id, r.addresses.take_error());
      continue;
    }
    StartConnecting(r.id, std::move(*r.addresses));
  }
}

void ConnectPool::StartConnecting(JobId id, std::vector<SocketAddress> addresses) {
  Job& job = jobs_.at(id);
  if (addresses.empty()) {
    FinishLater(id, MakeError(ErrorCode::kResolve, "\"" + job.host + "\" has no address"));
    return;
  }
  if (addresses.size() > kMaxAddressesPerConnect) addresses.resize(kMaxAddressesPerConnect);
  job.addresses = std::move(addresses);
  TryNext(id);
}

void ConnectPool::TryNext(JobId id) {
  Job& job = jobs_.at(id);
  while (job.next < job.addresses.size()) {
    const SocketAddress& address = job.addresses[job.next++];
    AddressScope scope = ScopeOf(address.get());
    if (!Allows(job.reach, scope)) {
      if (!job.skipped) job.skipped = scope;
      continue;
    }
    job.tried = true;
    UniqueFd fd(::socket(address.storage.ss_family, SOCK_STREAM, 0));
    if (!fd) {
      job.last_error = errno;
      continue;
    }
    ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
    (void)SetNonBlocking(fd.get());
    if (::connect(fd.get(), address.get(), address.length) == 0) {
      SetNoDelay(fd.get());
      FinishLater(id, std::move(fd));
      return;
    }
    if (errno != EINPROGRESS) {
      job.last_error = errno;
      continue;
    }
    int raw = fd.get();
    job.attempts.push_back(std::move(fd));
    loop_.Watch(raw, kWritable, [this, id, raw](unsigned) { OnAttempt(id, raw); });
    if (job.next < job.addresses.size()) {
      job.next_timer = loop_.AddTimer(kNextAddressDelay, [this, id] {
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return;
        it->second.next_timer = 0;
        TryNext(id);
      });
    }
    return;
  }
  if (!job.attempts.empty()) return;  // the ones in flight decide
  if (job.skipped && !job.tried) {
    FinishLater(id, PolicyFailure(job.host, job.port, *job.skipped, job.reach));
  } else {
    FinishLater(id, ConnectFailure(job.host, job.port, job.last_error));
  }
}

void ConnectPool::OnAttempt(JobId id, int fd) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Job& job = it->second;
  size_t i = 0;
  while (i < job.attempts.size() && job.attempts[i].get() != fd) ++i;
  if (i == job.attempts.size()) return;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  loop_.Unwatch(fd);
  UniqueFd attempt = std::move(job.attempts[i]);
  job.attempts.erase(job.attempts.begin() + static_cast<std::ptrdiff_t>(i));
  if (err == 0) {
    SetNoDelay(attempt.get());
    Finish(id, std::move(attempt));
    return;
  }
  job.last_error = err;
  // This one failed: the next address need not wait out the delay.
  if (job.next_timer != 0) {
    loop_.CancelTimer(job.next_timer);
    job.next_timer = 0;
  }
  TryNext(id);
}

void ConnectPool::Drop(Job& job) {
  if (job.deadline != 0) loop_.CancelTimer(job.deadline);
  if (job.next_timer != 0) loop_.CancelTimer(job.next_timer);
  job.deadline = 0;
  job.next_timer = 0;
  for (auto& fd : job.attempts) loop_.Unwatch(fd.get());
  job.attempts.clear();
}

void ConnectPool::Finish(JobId id, Result<UniqueFd> result) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  Drop(it->second);
  Done done = std::move(it->second.done);
  jobs_.erase(it);
  if (done) done(std::move(result));
}

void ConnectPool::FinishLater(JobId id, Result<UniqueFd> result) {
  Job& job = jobs_.at(id);
  Drop(job);
  // The deadline's slot holds the hand-over, so Cancel stops it like any timer.
  auto held = std::make_shared<Result<UniqueFd>>(std::move(result));
  job.deadline = loop_.AddTimer(std::chrono::milliseconds(0), [this, id, held] {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    it->second.deadline = 0;
    Finish(id, std::move(*held));
  });
}

}  // namespace tether::net
