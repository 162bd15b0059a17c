#include "daemon/connector.h"

#include <fcntl.h>
#include <unistd.h>

namespace tether::daemon {

Connector::Connector(net::EventLoop& loop, Done done) : loop_(loop), done_(std::move(done)) {
  int fds[2];
  if (::pipe(fds) == 0) {
    for (int fd : fds) {
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
    wake_read_.Reset(fds[0]);
    wake_write_.Reset(fds[1]);
    loop_.Watch(wake_read_.get(), net::kReadable, [this](unsigned) { OnWake(); });
  }
}

Connector::~Connector() {
  if (thread_.joinable()) thread_.join();
  if (wake_read_) loop_.Unwatch(wake_read_.get());
}

void Connector::Start(const config::HostConfig& host, const ssh::ConnectOptions& options) {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, host, options] {
    ssh::NoPrompter nobody;
    auto result = ssh::Session::Connect(host, nobody, options);
    {
      std::lock_guard<std::mutex> lock(mu_);
      result_.emplace(std::move(result));
    }
    char byte = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_write_.get(), &byte, 1);
  });
}

void Connector::OnWake() {
  char buf[16];
  while (::read(wake_read_.get(), buf, sizeof buf) > 0) {
  }
  std::optional<Result<std::unique_ptr<ssh::Session>>> result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    result.swap(result_);
  }
  if (!result) return;
  if (thread_.joinable()) thread_.join();  // it has finished: the result is in
  done_(std::move(*result));
}

}  // namespace tether::daemon
