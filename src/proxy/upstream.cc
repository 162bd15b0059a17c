#include "proxy/upstream.h"

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <vector>

#include "proxy/proxy_wire.h"

namespace tether::proxy {
namespace {

constexpr uint16_t kHttpProxyDefaultPort = 80;
constexpr uint16_t kSocksDefaultPort = 1080;
// An upstream's answer to CONNECT is a short head; more than this is not a proxy.
constexpr size_t kMaxUpstreamReplyBytes = 16u << 10;
// Every answer to CONNECT starts so; anything else is not an HTTP proxy, and may never send
// the empty line that would end it.
constexpr std::string_view kHttp1StatusPrefix = "HTTP/1.";

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<std::string> PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
    i += 2;
  }
  return out;
}

std::string Base64(std::string_view in) {
  std::vector<unsigned char> out(4 * ((in.size() + 2) / 3) + 1);
  int n = EVP_EncodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  return std::string(reinterpret_cast<char*>(out.data()), static_cast<size_t>(n));
}

// `url` for an error message, with the password (between the first ':' of the user info and
// the last '@') starred out: the message goes to the terminal and the log.
std::string WithoutPassword(std::string_view url) {
  size_t sep = url.find("://");
  size_t start = sep == std::string_view::npos ? 0 : sep + 3;
  size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return Printable(url);
  size_t colon = url.find(':', start);
  if (colon == std::string_view::npos || colon > at) return Printable(url);
  return Printable(url.substr(0, colon + 1)) + "***" + Printable(url.substr(at));
}

std::string HostForUrl(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// no_proxy: comma-separated names; "*" all; a leading dot or a plain name matches the name
// and its subdomains; ports after ':' are ignored.
bool Exempt(std::string_view no_proxy, const std::string& host) {
  std::string h = Lower(host);
  size_t start = 0;
  while (start <= no_proxy.size()) {
    size_t comma = no_proxy.find(',', start);
    if (comma == std::string_view::npos) comma = no_proxy.size();
    std::string entry = Lower(no_proxy.substr(start, comma - start));
    start = comma + 1;
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    if (entry.empty()) continue;
    if (entry == "*") return true;
    if (entry.front() == '[') {
      // "[::1]" or "[::1]:8080": target hosts hold IPv6 addresses without brackets.
      entry = entry.substr(1, entry.find(']') - 1);
    } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
      entry.erase(entry.find(':'));
    }
    if (entry.empty()) continue;
    if (entry.front() == '.') entry.erase(0, 1);
    if (h == entry) return true;
    if (h.size() > entry.size() && h.compare(h.size() - entry.size(), entry.size(), entry) == 0 &&
        h[h.size() - entry.size() - 1] == '.') {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string UpstreamProxy::ToString() const {
  std::string scheme = kind == Kind::kHttp ? "http://" : "socks5://";
  std::string user = credentials ? credentials->username + "@" : "";
  return scheme + user + HostForUrl(host) + ":" + std::to_string(port);
}

Result<UpstreamProxy> ParseUpstreamUrl(std::string_view url) {
  auto fail = [&](const std::string& why) {
    return MakeError("upstream", "upstream proxy " + WithoutPassword(url) + ": " + why,
                     "use http://host:port or socks5://host:port");
  };
  UpstreamProxy p;
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return fail("no scheme");
  std::string scheme = Lower(url.substr(0, sep));
  if (scheme == "http") {
    p.kind = UpstreamProxy::Kind::kHttp;
    p.port = kHttpProxyDefaultPort;
  } else if (scheme == "socks5" || scheme == "socks5h" || scheme == "socks") {
    p.kind = UpstreamProxy::Kind::kSocks5;
    p.port = kSocksDefaultPort;
  } else {
    return fail("scheme " + scheme + " is not supported");
  }
  std::string_view rest = url.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return fail("a path is not expected");
  size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    size_t colon = userinfo.find(':');
    auto user = PercentDecode(userinfo.substr(0, colon));
    auto pass = PercentDecode(colon == std::string_view::npos ? "" : userinfo.substr(colon + 1));
    if (!user || !pass) return fail("bad percent-encoding in the user or password");
    p.credentials = Credentials{*user, *pass};
  }
  std::string_view hostport = rest;
  std::string_view port_text;
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return fail("unterminated [");
    p.host = std::string(hostport.substr(1, close - 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("junk after ]");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = hostport.rfind(':');
    p.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) port_text = hostport.substr(colon + 1);
    // "http://::1" would otherwise be host ":" and port 1.
    if (p.host.find(':') != std::string::npos) return fail("an IPv6 address needs [brackets]");
  }
  if (p.host.empty()) return fail("no host");
  if (!port_text.empty() || hostport.ends_with(":")) {
    if (port_text.empty() || port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return fail("bad port");
    }
    int port = std::stoi(std::string(port_text));
    if (port < 1 || port > 65535) return fail("port out of range");
    p.port = static_cast<uint16_t>(port);
  }
  return p;
}

std::optional<UpstreamProxy> UpstreamFromEnvironment(
    const std::function<const char*(const char*)>& getenv, const Target& target, bool plain_http) {
  auto get = [&](const char* lower, const char* upper) -> std::string {
    const char* v = getenv(lower);
    if (v == nullptr || *v == '\0') v = getenv(upper);
    return v == nullptr ? "" : v;
  };
  std::string no_proxy = get("no_proxy", "NO_PROXY");
  if (!no_proxy.empty() && Exempt(no_proxy, target.host)) return std::nullopt;
  std::string value =
      plain_http ? get("http_proxy", "HTTP_PROXY") : get("https_proxy", "HTTPS_PROXY");
  if (value.empty()) value = get("all_proxy", "ALL_PROXY");
  if (value.empty()) return std::nullopt;
  auto parsed = ParseUpstreamUrl(value);
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

UpstreamHandshake::UpstreamHandshake(UpstreamProxy proxy, Target target)
    : proxy_(std::move(proxy)), target_(std::move(target)) {
  if (proxy_.kind == UpstreamProxy::Kind::kHttp) {
    phase_ = Phase::kHttpConnect;
    std::string authority = target_.ToString();
    out_ = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
    if (proxy_.credentials) {
      out_ += "Proxy-Authorization: Basic " +
              Base64(proxy_.credentials->username + ":" + proxy_.credentials->password) + "\r\n";
    }
    out_ += "\r\n";
  } else {
    phase_ = Phase::kSocksMethod;
    out_ = proxy_.credentials ? std::string{static_cast<char>(kSocks5Version), 2, 0x00, 0x02}
                              : std::string{static_cast<char>(kSocks5Version), 1, 0x00};
  }
}

UpstreamHandshake::Step UpstreamHandshake::Fail(std::string why, bool refused) {
  error_ = "upstream " + proxy_.ToString() + ": " + why;
  refused_ = refused;
  phase_ = Phase::kFailed;
  return Step::kFailed;
}

UpstreamHandshake::Step UpstreamHandshake::Feed(std::string_view bytes) {
  in_.append(bytes);
  for (int round = 0; round < 4; ++round) {
    switch (phase_) {
      case Phase::kHttpConnect: {
        const size_t known = std::min(in_.size(), kHttp1StatusPrefix.size());
        if (in_.compare(0, known, kHttp1StatusPrefix, 0, known) != 0) {
          return Fail("not an HTTP answer: " + Printable(in_.substr(0, in_.find_first_of("\r\n"))));
        }
        // The first empty line of either kind: the target's bytes after it may hold the other.
        size_t end = in_.find("\r\n\r\n");
        size_t skip = 4;
        if (size_t lf = in_.find("\n\n"); lf < end) {
          end = lf;
          skip = 2;
        }
        if (end == std::string::npos) {
          if (in_.size() > kMaxUpstreamReplyBytes) return Fail("answer too long");
          return Step::kNeedMore;
        }
        // "HTTP/1.1 200 Connection established"
        std::string line = in_.substr(0, in_.find_first_of("\r\n"));
        if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) {
          return Fail("not an HTTP answer: " + Printable(line));
        }
        int status = std::atoi(line.c_str() + 9);
        if (status / 100 != 2) {
          return Fail("CONNECT " + target_.ToString() + ": " + Printable(line.substr(9)),
                      // 407: our credentials failed, the target was never asked for.
                      status != kHttpProxyAuthRequired);
        }
        in_.erase(0, end + skip);
        phase_ = Phase::kDone;
        return Step::kDone;
      }
      case Phase::kSocksMethod: {
        if (in_.size() < 2) return Step::kNeedMore;
        if (static_cast<uint8_t>(in_[0]) != kSocks5Version) return Fail("not a SOCKS5 proxy");
        uint8_t method = static_cast<uint8_t>(in_[1]);
        in_.erase(0, 2);
        if (method == 0x00) {
          phase_ = Phase::kSocksConnect;
        } else if (method == static_cast<uint8_t>(Socks5Method::kUserPass) && proxy_.credentials) {
          const auto& c = *proxy_.credentials;
          if (c.username.size() > 255 || c.password.size() > 255)
            return Fail("credentials too long");
          out_ += static_cast<char>(kSocks5UserPassVersion);
          out_ += static_cast<char>(c.username.size());
          out_ += c.username;
          out_ += static_cast<char>(c.password.size());
          out_ += c.password;
          phase_ = Phase::kSocksAuth;
          break;
        } else {
          return Fail(proxy_.credentials ? "accepts none of our methods"
                                         : "wants a username and password");
        }
        [[fallthrough]];
      }
      case Phase::kSocksConnect: {
        if (!sent_connect_) {
          // Checked before writing: a failed handshake leaves no half request behind.
          HostKind kind = ClassifyHost(target_.host);
          if (target_.host.size() > kSocks5MaxDomainBytes) {
            return Fail("host name too long for SOCKS5");
          }
          sent_connect_ = true;
          out_ += static_cast<char>(kSocks5Version);
          out_ += static_cast<char>(0x01);  // CONNECT
          out_ += static_cast<char>(0x00);
          if (kind == HostKind::kIpv4) {
            unsigned char a[4];
            ::inet_pton(AF_INET, target_.host.c_str(), a);
            out_ += static_cast<char>(0x01);
            out_.append(reinterpret_cast<char*>(a), 4);
          } else if (kind == HostKind::kIpv6) {
            unsigned char a[16];
            ::inet_pton(AF_INET6, target_.host.c_str(), a);
            out_ += static_cast<char>(0x04);
            out_.append(reinterpret_cast<char*>(a), 16);
          } else {
            out_ += static_cast<char>(0x03);
            out_ += static_cast<char>(target_.host.size());
            out_ += target_.host;
          }
          out_ += static_cast<char>(target_.port >> 8);
          out_ += static_cast<char>(target_.port & 0xff);
        }
        // VER REP RSV ATYP ADDR PORT
        if (in_.size() < 5) return Step::kNeedMore;
        if (static_cast<uint8_t>(in_[0]) != kSocks5Version) return Fail("not a SOCKS5 answer");
        uint8_t rep = static_cast<uint8_t>(in_[1]);
        uint8_t atyp = static_cast<uint8_t>(in_[3]);
        size_t addr_len = atyp == 0x01   ? 4
                          : atyp == 0x04 ? 16
                          : atyp == 0x03 ? 1u + static_cast<uint8_t>(in_[4])
                                         : 0;
        if (addr_len == 0) return Fail("bad address type in its answer");
        size_t total = 4 + addr_len + 2;
        if (in_.size() < total) return Step::kNeedMore;
        if (rep != 0x00) {
          return Fail("refused " + target_.ToString() + " (SOCKS5 code " + HexByte(rep) + ")",
                      true);
        }
        in_.erase(0, total);
        phase_ = Phase::kDone;
        return Step::kDone;
      }
      case Phase::kSocksAuth: {
        if (in_.size() < 2) return Step::kNeedMore;
        if (static_cast<uint8_t>(in_[1]) != 0x00) return Fail("wrong username or password");
        in_.erase(0, 2);
        phase_ = Phase::kSocksConnect;
        break;
      }
      case Phase::kDone:
        return Step::kDone;
      case Phase::kFailed:
        return Step::kFailed;
    }
  }
  return Step::kNeedMore;
}

std::string UpstreamHandshake::TakeOutput() {
  std::string out;
  out.swap(out_);
  return out;
}

std::string UpstreamHandshake::TakeRest() {
  std::string out;
  out.swap(in_);
  return out;
}

std::string ToAbsoluteForm(std::string_view head, const Target& target,
                           const std::optional<Credentials>& upstream_credentials) {
  size_t sp1 = head.find(' ');
  size_t eol = head.find('\n');
  if (sp1 == std::string_view::npos || eol == std::string_view::npos || sp1 > eol) {
    return std::string(head);
  }
  std::string out(head.substr(0, sp1 + 1));
  out += "http://" + HostForUrl(target.host);
  if (target.port != kHttpDefaultPort) out += ":" + std::to_string(target.port);
  out += std::string(head.substr(sp1 + 1, eol + 1 - (sp1 + 1)));
  if (upstream_credentials) {
    out += "Proxy-Authorization: Basic " +
           Base64(upstream_credentials->username + ":" + upstream_credentials->password) + "\r\n";
  }
  out += std::string(head.substr(eol + 1));
  return out;
}

}  // namespace tether::proxy
