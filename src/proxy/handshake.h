// The server side of one proxy connection up to the moment it knows where to connect:
// protocol sniffing, SOCKS5 method and password negotiation, SOCKS4/4a, HTTP CONNECT and
// absolute-form requests, all on one port. Pure: the caller feeds what it read and writes
// what it is told; a -D listener and the server-side proxy share it.
//
//   ProxyHandshake h(policy);
//   switch (h.Feed(bytes)) {          // everything read since the last call
//     case kNeedMore: write h.TakeReply(); read more;
//     case kConnect:  write h.TakeReply(); connect to h.target(); then write
//                     h.Connected() or h.Failed(why); send h.TakeUpstream() to the target
//     case kClose:    write h.TakeReply(); close (h.error() says why, for the log)
//   }
#pragma once

#include <string>
#include <string_view>

#include "proxy/sniff.h"
#include "proxy/target.h"

namespace tether::proxy {

// Who may use the proxy. With `require_auth`, SOCKS5 clients must send `credentials`
// (RFC 1929), HTTP clients a matching Proxy-Authorization, and SOCKS4 (no passwords) is
// refused; comparisons take constant time.
struct ProxyPolicy {
  bool require_auth = false;
  Credentials credentials;
};

// Why the connection to the target failed, for the protocol's closest reply code.
enum class ConnectFailure { kRefused, kUnreachable, kTimedOut, kNotAllowed, kOther };

class ProxyHandshake {
 public:
  enum class Step { kNeedMore, kConnect, kClose };

  explicit ProxyHandshake(ProxyPolicy policy) : policy_(std::move(policy)) {}

  // A handshake that is to be refused because the listener is at a cap (`reason`, for
  // the log): it asks no password and, once the client has named its target, answers
  // with the protocol's "cannot serve" (SOCKS5 general failure, SOCKS4 rejected, HTTP
  // 503) and kClose. A client told why rather than cut off does not retry at once.
  static ProxyHandshake Busy(std::string reason);

  // Appends `bytes` to what was read and advances as far as they allow. Bytes after the
  // request (a pipelined TLS hello, an HTTP body) are kept for TakeUpstream().
  Step Feed(std::string_view bytes);
  // Bytes to write to the client now (method selection, auth status, an error reply).
  std::string TakeReply();

  // After kConnect: where to, and how it was asked.
  const Target& target() const { return target_; }
  Protocol protocol() const { return protocol_; }
  // An absolute-form http:// request (as opposed to a tunnel).
  bool forwards_http() const { return forward_; }
  // The connection is made: the bytes to write to the client (SOCKS success, HTTP 200 for
  // CONNECT; nothing for a forwarded HTTP request, whose origin answers).
  std::string Connected();
  // It could not be made: the error reply; close after writing it.
  std::string Failed(ConnectFailure why, const std::string& message);
  // What goes to the target first: for a tunnel, bytes the client sent early; for a
  // forwarded HTTP request, the rewritten head and what followed it.
  std::string TakeUpstream();

  // Why kClose ("" otherwise), safe to log.
  const std::string& error() const { return error_; }

 private:
  // kConnected and kClosed are terminal: Feed keeps answering the same.
  enum class Phase {
    kSniff,
    kSocks5Greeting,
    kSocks5Auth,
    kSocks5Request,
    kSocks4,
    kHttp,
    kConnected,
    kClosed
  };
  Step Refuse(std::string reason, std::string reply);
  // After the request is parsed: the busy refusal, or kConnect.
  Step Named();
  bool CredentialsMatch(const Credentials& offered) const;

  ProxyPolicy policy_;
  Phase phase_ = Phase::kSniff;
  Protocol protocol_ = Protocol::kNeedMore;
  std::string in_;
  std::string reply_;
  std::string upstream_;
  Target target_;
  bool forward_ = false;
  std::string error_;
  std::string busy_;  // non-empty: refuse once the target is named (Busy)
};

}  // namespace tether::proxy
