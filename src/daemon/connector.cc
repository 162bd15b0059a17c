#include "daemon/connector.h"

namespace tether::daemon {

Connector::Connector(net::EventLoop& loop, Done done) : loop_(loop), done_(std::move(done)) {
  if (wake_.valid()) {
    loop_.Watch(wake_.read_fd(), net::kReadable, [this](unsigned) { OnWake(); });
  }
}

Connector::~Connector() {
  if (thread_.joinable()) thread_.join();
  if (wake_.valid()) loop_.Unwatch(wake_.read_fd());
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
    wake_.Wake();
  });
}

void Connector::OnWake() {
  wake_.Drain();
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
