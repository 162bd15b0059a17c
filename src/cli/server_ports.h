// Whose is a TCP port on the server: free, held by our own forward, by another process of
// our account, or by another account (squatted). Shared servers have many accounts, and a
// port tether means to listen on (the server proxy's 127.0.0.1:10808) can be taken by one
// of them before `up` or while the link is down: no address is handed out, and nothing of
// the owner's is sent, until we know the listener there is ours.
//
// The answer comes from the server's /proc/net/tcp{,6} (LISTEN lines and their uid) and
// `id -u`, read with one command; an account's name from `getent passwd UID`. The command
// runs through a seam (ServerCommand): over the daemon's connection for `up`, `run` and
// `env`, over doctor's own session for doctor, and over recorded text in the unit tests.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "daemon/state_dir.h"
#include "forward/socket_table.h"

namespace tether::cli {

// Runs a shell command on the server and gives back its stdout (errors when it cannot run).
using ServerCommand = std::function<Result<std::string>(const std::string& command)>;

// What the server printed for kListenersCommand, parsed.
struct ServerListeners {
  bool readable = false;  // false: the server has no /proc/net/tcp we may read
  uint32_t our_uid = 0;   // the account we log in as
  std::vector<forward::SocketEntry> listening;  // LISTEN sockets with a process
};

// `uid N` (or `none`), then both tables.
extern const char* const kListenersCommand;

// Parses kListenersCommand's output; headers and garbled lines are skipped. Errors when
// the greeting is missing or not a uid.
Result<ServerListeners> ParseServerListeners(std::string_view output);

enum class PortHolding {
  kUnknown,     // the table cannot be read there
  kFree,        // nobody listens on the port
  kOurs,        // our account listens, and our forward is active: our forward
  kOurAccount,  // our account listens but our forward is not active (a stale sshd child
                // of an earlier connection, or another program of ours)
  kOther,       // another account listens: squatted
};

struct PortHolder {
  PortHolding holding = PortHolding::kUnknown;
  uint32_t uid = 0;     // kOurs, kOurAccount, kOther
  std::string account;  // its name on the server; "" when unknown
};

// Who holds `port` (any address, IPv4 or IPv6). Another account on any address wins:
// a squatter on 0.0.0.0 or ::1 is reached by "localhost" as well.
PortHolder WhoHolds(const ServerListeners& listeners, uint16_t port, bool our_forward_active);

// The first port after `port` (up to kFreePortSearch of them, never past 65535) that
// nobody on the server listens on.
inline constexpr int kFreePortSearch = 100;
std::optional<uint16_t> FreePortAfter(const ServerListeners& listeners, uint16_t port);

// "port 10808 on the server is held by uid 1001 (mallory), another account".
std::string DescribeHolder(uint16_t port, const PortHolder& holder);

// Reads the server's listeners and says who holds `port`; the account's name is asked
// only for another account.
struct PortCheck {
  PortHolder holder;
  std::optional<uint16_t> free_port;  // a free port after it (when the table was read)
};
Result<PortCheck> CheckServerPort(const ServerCommand& run, uint16_t port, bool our_forward_active);

// Why `env` and `run` may not hand out the server proxy's address 127.0.0.1:`port`, or
// nullopt when they may: the daemon's `state` for it must be "listening" (`why` is its
// error otherwise), and `check` (CheckServerPort with our forward active when listening)
// must find no other account on the port and our listener there. A server without a
// readable table leaves the daemon's word.
std::optional<Error> RefuseProxyAddress(const std::string& host, uint16_t port,
                                        const std::string& state, const std::string& why,
                                        const Result<PortCheck>& check);

// A ServerCommand over the running daemon of `host` (HOST.mux), bounded in time.
ServerCommand DaemonServerCommand(const daemon::StateDir& state, const std::string& host);

}  // namespace tether::cli
