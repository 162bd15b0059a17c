// The laptop's own proxy, used as the exit of the server-side proxy when one is set:
// `--upstream http://127.0.0.1:7890` or `socks5://...`, or the laptop's proxy variables.
// Pure: URL parsing, choosing from the environment, and the client side of the CONNECT
// and SOCKS5 handshakes as an incremental state machine the caller drives with I/O.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proxy/parse_result.h"
#include "proxy/target.h"

namespace tether::proxy {

struct UpstreamProxy {
  enum class Kind { kHttp, kSocks5 };
  Kind kind = Kind::kHttp;
  std::string host;
  uint16_t port = 0;
  std::optional<Credentials> credentials;

  // "http://127.0.0.1:7890" (never the password), for messages and status.
  std::string ToString() const;
  bool operator==(const UpstreamProxy&) const = default;
};

// http://[user:pass@]host[:port][/] (port 80 by default), socks5:// and socks5h://
// (port 1080; both resolve names at the proxy), socks:// as socks5://. User and password
// are percent-decoded. Errors say what is wrong with the URL.
Result<UpstreamProxy> ParseUpstreamUrl(std::string_view url);

// The proxy the laptop's environment names for `target`, as curl reads it: a tunnel uses
// https_proxy (then all_proxy), a plain-http request http_proxy (then all_proxy); lower
// case before upper case; no_proxy ("*", names, .suffixes, addresses; ports ignored)
// exempts a host. nullopt when none applies or the value does not parse.
std::optional<UpstreamProxy> UpstreamFromEnvironment(
    const std::function<const char*(const char*)>& getenv, const Target& target, bool plain_http);

// The client side of the handshake with an upstream proxy, to reach `target` through it:
//   UpstreamHandshake h(proxy, target);
//   send h.TakeOutput();
//   loop: read; switch (h.Feed(bytes)) { kNeedMore: send h.TakeOutput(), read more;
//                                        kDone: the tunnel is open, h.TakeRest() are the
//                                               target's first bytes;
//                                        kFailed: h.error() says why }
class UpstreamHandshake {
 public:
  enum class Step { kNeedMore, kDone, kFailed };
  UpstreamHandshake(UpstreamProxy proxy, Target target);

  Step Feed(std::string_view bytes);
  std::string TakeOutput();
  bool TakeOutputPending() const { return !out_.empty(); }
  std::string TakeRest();
  const std::string& error() const { return error_; }
  // Whether the upstream refused the target itself (as opposed to failing).
  bool refused() const { return refused_; }

 private:
  // kDone and kFailed are terminal: Feed keeps answering the same.
  enum class Phase { kHttpConnect, kSocksMethod, kSocksAuth, kSocksConnect, kDone, kFailed };
  Step Fail(std::string why, bool refused = false);

  UpstreamProxy proxy_;
  Target target_;
  Phase phase_;
  std::string in_;
  std::string out_;
  std::string error_;
  bool refused_ = false;
  bool sent_connect_ = false;
};

// An origin-form request head ("GET /x HTTP/1.1 ...") turned back into absolute form for
// an HTTP upstream ("GET http://host:port/x HTTP/1.1"), with Proxy-Authorization for the
// upstream when it has credentials.
std::string ToAbsoluteForm(std::string_view head, const Target& target,
                           const std::optional<Credentials>& upstream_credentials);

}  // namespace tether::proxy
