// Which protocol a client speaks on the shared proxy port, from its first bytes.
//
// Every protocol served there has the client speak first, and the first byte tells them
// apart: 0x04 is SOCKS4/4a, 0x05 is SOCKS5, and an ASCII letter starts an HTTP method
// ("CONNECT", "GET", ...). Anything else, such as a TLS ClientHello (0x16), is kUnknown:
// close without answering. Something else that starts with a letter (an SSH banner,
// "SSH-2.0-...") goes to the HTTP parser and gets a 400, which is harmless.
#pragma once

#include <cstddef>
#include <string_view>

namespace tether::proxy {

enum class Protocol { kNeedMore, kSocks4, kSocks5, kHttp, kUnknown };

// The most bytes Sniff looks at; it decides on fewer when it can.
inline constexpr size_t kSniffBytes = 1;

// Pure: looks at the buffered bytes, consumes none (the chosen parser reads them again).
// kNeedMore only when `first_bytes` is empty.
Protocol Sniff(std::string_view first_bytes);

// "SOCKS4", "SOCKS5", "HTTP", ... for log lines.
std::string_view ProtocolName(Protocol protocol);

}  // namespace tether::proxy
