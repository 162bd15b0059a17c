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

void Connector::Start(const config::HostConfig& host, const ssh::ConnectOptions& options,
                      ssh::Prompter* prompter) {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, host, options, prompter] {
    ssh::NoPrompter nobody("run `tether login " + host.alias + "`");
    auto result = ssh::Session::Connect(host, prompter != nullptr ? *prompter : nobody, options);
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

config::HostConfig RedialHost(const config::HostConfig& host) {
  config::HostConfig redial = host;
  if (redial.connect_timeout.count() == 0) redial.connect_timeout = kReconnectTimeout;
  return redial;
}

HostDialer::HostDialer(net::EventLoop& loop, net::ConnectPool& connects, config::HostConfig host)
    : connects_(connects),
      host_(std::move(host)),
      connector_(loop, [this](Result<std::unique_ptr<ssh::Session>> r) {
        Dialed done = std::move(done_);
        done_ = nullptr;
        if (done) done(std::move(r));
      }) {}

void HostDialer::Dial(UniqueFd first_hop, ssh::Prompter* prompter, Dialed done) {
  if (connector_.running()) return;
  ssh::ConnectOptions options;
  options.tcp_connect_timeout = kReconnectTcpTimeout;
  // No `uname` on a reconnect: it runs the user's shell rc, which can take seconds (a
  // pyenv or conda init), and the forwards would wait for it. The system is the same one.
  options.probe = false;
  if (first_hop) options.first_hop_socket = std::make_shared<UniqueFd>(std::move(first_hop));
  done_ = std::move(done);
  connector_.Start(RedialHost(host_), options, prompter);
}

void HostDialer::Probe(std::chrono::milliseconds within, Probed done) {
  // Through jump hosts, the first hop is what we can reach directly.
  const config::HostConfig& first = host_.jump_chain.empty() ? host_ : host_.jump_chain.front();
  connects_.Connect(first.hostname, first.port, "", within, std::move(done));
}

}  // namespace tether::daemon
