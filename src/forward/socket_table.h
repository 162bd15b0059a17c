// The server's TCP sockets as Linux lists them in /proc/net/tcp and /proc/net/tcp6, and
// the question the owner check asks of them: which account's process holds the socket
// that connected from the address and port sshd names in a forwarded-tcpip open.
//
// Each line there is "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...", the
// addresses as hex words and the ports as 4 hex digits. An address word is printed from
// the kernel's memory in the server's own byte order, which we do not know, so an
// address matches in either order. Pure functions: unit-tested on recorded tables.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::forward {

struct SocketEntry {
  std::string local_address;  // hex as printed: 8 digits (tcp) or 32 (tcp6)
  uint16_t local_port = 0;
  std::string remote_address;
  uint16_t remote_port = 0;
  int state = 0;  // 0x01 established, 0x06 time-wait, 0x0A listen, ...
  uint32_t uid = 0;
  uint64_t inode = 0;  // 0: no process holds it (time-wait, orphaned): its uid means nothing
};

// The lines of /proc/net/tcp{,6} that parse (headers and garbage are skipped).
std::vector<SocketEntry> ParseSocketTable(std::string_view text);

// The uid holding the socket connected from origin_ip:origin_port to a listener on
// listen_port, or nullopt when no live socket matches (it closed, or never was).
// origin_ip is what sshd names (dotted IPv4, or IPv6); an IPv4 origin also matches its
// ::ffff: form in tcp6.
std::optional<uint32_t> OwnerOfConnection(const std::vector<SocketEntry>& table,
                                          const std::string& origin_ip, uint16_t origin_port,
                                          uint16_t listen_port);

// The uid holding a listening socket on `port` (any address), or nullopt when none does.
std::optional<uint32_t> ListenerOf(const std::vector<SocketEntry>& table, uint16_t port);
// The same, but another account's listener first: sshd's "localhost" listener binds both
// 127.0.0.1 and ::1 and succeeds with one of them, so ours on one address may sit beside
// another account's on the other.
std::optional<uint32_t> ListenerPreferringOthers(const std::vector<SocketEntry>& table,
                                                 uint16_t port, uint32_t ours);

// The forms an address takes in the table (both byte orders; for IPv4 also the tcp6
// mapped forms); empty when `ip` is not an address.
std::vector<std::string> TableForms(const std::string& ip);

// The 4 hex digits the table prints for `port`, as the owner check asks the server for.
std::string PortHex(uint16_t port);

}  // namespace tether::forward
