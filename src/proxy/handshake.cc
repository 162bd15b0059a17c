#include "proxy/handshake.h"

#include <openssl/crypto.h>

#include "proxy/http_proxy.h"
#include "proxy/socks.h"

namespace tether::proxy {
namespace {

// Constant time in the contents; a length mismatch still compares equal-length buffers so
// the time does not tell how long the secret is.
bool SameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) {
    (void)CRYPTO_memcmp(b.data(), b.data(), b.size());
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

bool ProxyHandshake::CredentialsMatch(const Credentials& offered) const {
  // Both compared, always: no early exit on the user name.
  bool user = SameSecret(offered.username, policy_.credentials.username);
  bool pass = SameSecret(offered.password, policy_.credentials.password);
  return user && pass;
}

ProxyHandshake::Step ProxyHandshake::Refuse(std::string reason, std::string reply) {
  error_ = std::move(reason);
  reply_ += reply;
  phase_ = Phase::kClosed;
  return Step::kClose;
}

ProxyHandshake ProxyHandshake::Busy(std::string reason) {
  ProxyHandshake h(ProxyPolicy{});
  h.busy_ = reason.empty() ? "busy" : std::move(reason);
  return h;
}

ProxyHandshake::Step ProxyHandshake::Named() {
  phase_ = Phase::kConnected;
  if (busy_.empty()) return Step::kConnect;
  switch (protocol_) {
    case Protocol::kSocks5:
      return Refuse(busy_, EncodeSocks5Reply(Socks5Reply::kGeneralFailure));
    case Protocol::kSocks4:
      return Refuse(busy_, EncodeSocks4Reply(Socks4Reply::kRejected));
    default:
      return Refuse(
          busy_, EncodeHttpError(kHttpServiceUnavailable, "too many connections; try again later"));
  }
}

ProxyHandshake::Step ProxyHandshake::Feed(std::string_view bytes) {
  in_.append(bytes);
  // Bounded: every round either consumes a message or returns.
  for (int round = 0; round < 8; ++round) {
    switch (phase_) {
      case Phase::kSniff: {
        protocol_ = Sniff(in_);
        switch (protocol_) {
          case Protocol::kNeedMore:
            return Step::kNeedMore;
          case Protocol::kSocks5:
            phase_ = Phase::kSocks5Greeting;
            break;
          case Protocol::kSocks4:
            if (policy_.require_auth) {
              return Refuse("SOCKS4 has no password and this proxy requires one",
                            EncodeSocks4Reply(Socks4Reply::kRejected));
            }
            phase_ = Phase::kSocks4;
            break;
          case Protocol::kHttp:
            phase_ = Phase::kHttp;
            break;
          case Protocol::kUnknown:
            return Refuse(
                "not a proxy protocol (first byte " + HexByte(static_cast<uint8_t>(in_[0])) + ")",
                "");
        }
        break;
      }
      case Phase::kSocks5Greeting: {
        auto r = ParseSocks5Greeting(in_);
        if (r.need_more()) return Step::kNeedMore;
        if (r.refused()) return Refuse(r.refusal().reason, r.refusal().reply);
        in_.erase(0, r.consumed());
        Socks5Method method = SelectSocks5Method(
            r.value(), policy_.require_auth ? SocksAuth::kUserPass : SocksAuth::kNone);
        reply_ += EncodeSocks5MethodSelection(method);
        if (method == Socks5Method::kNoAcceptable) {
          return Refuse(policy_.require_auth ? "SOCKS5 client offers no username/password"
                                             : "SOCKS5 client offers no method we support",
                        "");
        }
        phase_ = method == Socks5Method::kUserPass ? Phase::kSocks5Auth : Phase::kSocks5Request;
        break;
      }
      case Phase::kSocks5Auth: {
        auto r = ParseSocks5UserPass(in_);
        if (r.need_more()) return Step::kNeedMore;
        if (r.refused()) return Refuse(r.refusal().reason, r.refusal().reply);
        in_.erase(0, r.consumed());
        // Without required auth a client that only offered user/pass may send anything.
        bool ok = !policy_.require_auth || CredentialsMatch(r.value());
        reply_ += EncodeSocks5AuthStatus(ok);
        if (!ok) return Refuse("SOCKS5 wrong username or password", "");
        phase_ = Phase::kSocks5Request;
        break;
      }
      case Phase::kSocks5Request: {
        auto r = ParseSocks5Request(in_);
        if (r.need_more()) return Step::kNeedMore;
        if (r.refused()) return Refuse(r.refusal().reason, r.refusal().reply);
        in_.erase(0, r.consumed());
        target_ = r.value();
        upstream_ = std::move(in_);
        in_.clear();
        return Named();
      }
      case Phase::kSocks4: {
        auto r = ParseSocks4Request(in_);
        if (r.need_more()) return Step::kNeedMore;
        if (r.refused()) return Refuse(r.refusal().reason, r.refusal().reply);
        in_.erase(0, r.consumed());
        target_ = r.value().target;
        upstream_ = std::move(in_);
        in_.clear();
        return Named();
      }
      case Phase::kHttp: {
        auto r = ParseHttpProxyRequest(in_);
        if (r.need_more()) return Step::kNeedMore;
        if (r.refused()) return Refuse(r.refusal().reason, r.refusal().reply);
        HttpProxyRequest& req = r.value();
        if (policy_.require_auth) {
          bool ok = req.credentials.has_value() && req.credentials->ok() &&
                    CredentialsMatch(**req.credentials);
          if (!ok) {
            return Refuse(req.credentials.has_value() ? "HTTP proxy: wrong credentials"
                                                      : "HTTP proxy: no credentials",
                          EncodeHttpError(kHttpProxyAuthRequired,
                                          "this proxy needs the user and token that "
                                          "`tether env` prints"));
          }
        }
        in_.erase(0, r.consumed());
        target_ = req.target;
        forward_ = req.kind == HttpRequestKind::kForward;
        upstream_ = forward_ ? req.forward_head + in_ : std::move(in_);
        in_.clear();
        return Named();
      }
      case Phase::kConnected:
        // A caller that feeds again before connecting: what the client sent meanwhile is
        // the tunnel's too.
        upstream_ += in_;
        in_.clear();
        return Step::kConnect;
      case Phase::kClosed:
        return Step::kClose;
    }
  }
  return Step::kNeedMore;
}

std::string ProxyHandshake::TakeReply() {
  std::string out;
  out.swap(reply_);
  return out;
}

std::string ProxyHandshake::TakeUpstream() {
  std::string out;
  out.swap(upstream_);
  return out;
}

std::string ProxyHandshake::Connected() {
  switch (protocol_) {
    case Protocol::kSocks5:
      return EncodeSocks5Reply(Socks5Reply::kSucceeded);
    case Protocol::kSocks4:
      return EncodeSocks4Reply(Socks4Reply::kGranted);
    case Protocol::kHttp:
      return forward_ ? std::string() : EncodeHttpConnectEstablished();
    default:
      return "";
  }
}

std::string ProxyHandshake::Failed(ConnectFailure why, const std::string& message) {
  switch (protocol_) {
    case Protocol::kSocks5: {
      Socks5Reply code = Socks5Reply::kGeneralFailure;
      if (why == ConnectFailure::kRefused) code = Socks5Reply::kConnectionRefused;
      if (why == ConnectFailure::kUnreachable) code = Socks5Reply::kHostUnreachable;
      if (why == ConnectFailure::kTimedOut) code = Socks5Reply::kTtlExpired;
      if (why == ConnectFailure::kNotAllowed) code = Socks5Reply::kNotAllowed;
      return EncodeSocks5Reply(code);
    }
    case Protocol::kSocks4:
      return EncodeSocks4Reply(Socks4Reply::kRejected);
    case Protocol::kHttp:
      return EncodeHttpError(why == ConnectFailure::kTimedOut     ? kHttpGatewayTimeout
                             : why == ConnectFailure::kNotAllowed ? kHttpForbidden
                                                                  : kHttpBadGateway,
                             "cannot reach " + target_.ToString() + ": " + message);
    default:
      return "";
  }
}

}  // namespace tether::proxy
