// Where the server-side proxy's connections leave: from the laptop, straight to the
// target, or through the laptop's own proxy (--upstream, else the laptop's proxy
// variables as the daemon saw them at start). Takes each client once its handshake named
// the target, connects off the loop (ConnectPool), talks to the upstream proxy if there
// is one, answers the client, and relays. Loop thread only.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/unique_fd.h"
#include "forward/socket_relay.h"
#include "net/connect_pool.h"
#include "net/event_loop.h"
#include "proxy/handshake.h"
#include "proxy/upstream.h"

namespace tether::forward {

// A target (or the upstream proxy) that does not answer within this is given up.
inline constexpr std::chrono::seconds kExitConnectTimeout{15};

class LaptopExit {
 public:
  // `upstream`: the configured upstream, or nullopt to go direct unless `use_environment`
  // and the environment names a proxy for the target.
  // `reach`: what of the laptop's network the server may reach (net/address_scope.h),
  // checked on every address a target resolves to; the upstream proxy itself is exempt,
  // and a target handed to it is checked when it is an address (names are its to resolve).
  LaptopExit(net::EventLoop& loop, net::ConnectPool& connects,
             std::optional<proxy::UpstreamProxy> upstream, bool use_environment,
             net::Reach reach = net::Reach::kPublic);
  ~LaptopExit();
  LaptopExit(const LaptopExit&) = delete;
  LaptopExit& operator=(const LaptopExit&) = delete;

  // The ProxyConnections::Exit of the server proxy.
  void Dispatch(UniqueFd client, std::unique_ptr<proxy::ProxyHandshake> handshake,
                std::string log_prefix);
  void Clear();
  // Where connections go, for status: "direct", or the upstream's URL (no password).
  std::string Describe() const;

 private:
  struct Dial {
    UniqueFd client;
    std::unique_ptr<proxy::ProxyHandshake> handshake;
    std::string log_prefix;
    net::ConnectPool::JobId job = 0;
    UniqueFd upstream;                               // connected, handshake in progress
    std::unique_ptr<proxy::UpstreamHandshake> talk;  // with the upstream proxy
    std::optional<proxy::UpstreamProxy> via;
  };
  void OnConnected(uint64_t id, Result<UniqueFd> socket);
  void OnUpstreamEvents(uint64_t id);
  void Fail(uint64_t id, proxy::ConnectFailure why, const std::string& message);
  void Finish(uint64_t id, UniqueFd out, std::string first_from_target);

  net::EventLoop& loop_;
  net::ConnectPool& connects_;
  net::Reach reach_;
  std::optional<proxy::UpstreamProxy> upstream_;
  bool use_environment_;
  RelaySet relays_;
  std::unordered_map<uint64_t, std::unique_ptr<Dial>> dials_;
  uint64_t next_id_ = 1;
};

}  // namespace tether::forward
