#include "agent/listen.h"

#include <arpa/inet.h>

#include "common/text.h"

namespace tether::agent {
namespace {

constexpr std::string_view kDefaultHost = "127.0.0.1";
constexpr std::string_view kHint = "use ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080";

// 'text', quoted for a message. Built by appending: at -O3, GCC 12 inlines
// `"'" + std::string(host)` (an insert at the front) into a memcpy that its -Wrestrict
// check wrongly takes for an overlapping one, a known false positive of that release.
std::string Quoted(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '\'';
  out += text;
  out += '\'';
  return out;
}

Result<int> ParsePort(std::string_view text) {
  auto port = ParseInt(text);
  if (!port || *port < 0 || *port > 65535) {
    return MakeError("listen", "bad port " + Quoted(text), std::string(kHint));
  }
  return static_cast<int>(*port);
}

}  // namespace

Result<ListenAddress> ParseListenAddress(std::string_view text) {
  if (text.empty()) return MakeError("listen", "empty address", std::string(kHint));
  std::string_view host;
  std::string_view port_text;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return MakeError("listen", "bad bracketed address " + Quoted(text), std::string(kHint));
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    in6_addr probe{};
    if (::inet_pton(AF_INET6, std::string(host).c_str(), &probe) != 1) {
      return MakeError("listen", Quoted(host) + " is not an IPv6 address", std::string(kHint));
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      host = kDefaultHost;
      port_text = text;
    } else {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
      if (host.find(':') != std::string_view::npos) {
        return MakeError("listen", "an IPv6 address needs brackets", "e.g. [::1]:8080");
      }
      if (host.empty()) return MakeError("listen", "no address before ':'", std::string(kHint));
    }
  }
  auto port = ParsePort(port_text);
  if (!port) return port.take_error();
  return ListenAddress{std::string(host), *port};
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, std::string(host).c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  return false;
}

}  // namespace tether::agent
