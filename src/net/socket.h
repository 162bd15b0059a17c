// Socket helpers: listeners, accept, outgoing TCP connections with a timeout.
// Every function returns descriptors with FD_CLOEXEC set.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "net/address_scope.h"

namespace tether::net {

// Listens on `host`:`port`, non-blocking. Empty host means 127.0.0.1; "*" means every
// local address (IPv4 and IPv6). One descriptor per address the name resolves to.
// A port already in use is an error that names the address and port.
Result<std::vector<UniqueFd>> ListenTcp(const std::string& host, uint16_t port);

// Listens on a unix socket at `path`, mode 0600, non-blocking. An existing file at
// `path` is an error unless it is a socket nobody accepts on (a stale one), which is
// replaced.
Result<UniqueFd> ListenUnix(const std::string& path);

// The port a listening socket is bound to (for port 0).
Result<uint16_t> LocalPort(int fd);

// Accepts one connection, non-blocking and close-on-exec. An empty UniqueFd when
// nothing is pending.
Result<UniqueFd> Accept(int listen_fd);

// One address a name resolved to, ready for connect(2).
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// Resolves `host` (getaddrinfo: may block for seconds) to the TCP addresses to try, in the
// resolver's order. Error step "resolve".
Result<std::vector<SocketAddress>> ResolveTcp(const std::string& host, uint16_t port);
// `host` written as an IPv4 or IPv6 address, without asking a resolver; nullopt for a name.
std::optional<SocketAddress> NumericAddress(const std::string& host, uint16_t port);

// The error of a connect to host:port that failed with `err` (ECONNREFUSED, ETIMEDOUT,
// ...), with a hint for the common ones.
Error ConnectFailure(const std::string& host, uint16_t port, int err);
// The error of a connect whose every address `reach` refused; `scope` is the first one's.
Error PolicyFailure(const std::string& host, uint16_t port, AddressScope scope, Reach reach);

// Resolves `host` and connects to the first address that answers, trying each in turn,
// within `timeout` in all (0: the system's own timeouts), skipping addresses `reach` does
// not allow (net/address_scope.h). Errors use the steps "resolve", "connect" and, when
// every address was skipped, "policy". The returned descriptor is blocking.
Result<UniqueFd> ConnectTcp(const std::string& host, uint16_t port,
                            std::chrono::milliseconds timeout, Reach reach = Reach::kAll);

// Connects to a unix socket (blocking).
Result<UniqueFd> ConnectUnix(const std::string& path);
// The same without ever waiting: a unix connect completes at once or fails; a listener
// whose backlog is full is an error (EAGAIN) rather than a wait. The descriptor is
// non-blocking.
Result<UniqueFd> ConnectUnixNow(const std::string& path);

Status SetNonBlocking(int fd, bool on = true);
void SetNoDelay(int fd);
// TCP keepalive probes: idle, interval and count as given.
void SetKeepAlive(int fd, int idle_s, int interval_s, int count);

// Bounds how long a blocking send may wait (SO_SNDTIMEO): on a dead link libssh's
// blocking write must fail, not freeze the loop.
void SetSendTimeout(int fd, std::chrono::milliseconds timeout);
// Linux's TCP_USER_TIMEOUT: unacknowledged data for this long kills the connection.
// A no-op where the platform lacks it (the keepalive still notices).
void SetUserTimeout(int fd, std::chrono::milliseconds timeout);

// True when the peer's TCP stack acknowledges what we send on TCP socket `fd`: nothing is
// left unacknowledged, or an acknowledgment came within `within`. Then the path works,
// whatever the peer's program is doing. nullopt where that cannot be known (not TCP: a
// jump host's relay, a ProxyCommand; or no TCP_INFO).
// The smoothed round-trip time TCP measured on `fd` (TCP_INFO), or nullopt when it cannot
// say (not TCP, no TCP_INFO).
std::optional<std::chrono::microseconds> TcpRtt(int fd);
std::optional<bool> PeerAcknowledges(int fd, std::chrono::milliseconds within);

// "127.0.0.1:8000", "[::1]:22".
std::string FormatHostPort(const std::string& host, uint16_t port);

}  // namespace tether::net
