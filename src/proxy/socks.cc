// The SOCKS decoders check each fixed field as soon as its byte is buffered, so a client
// sending garbage is answered without waiting for a length it never means to send, and never
// read past what the lengths announce. Ideas from OpenSSH's channels.c (channel_decode_socks4,
// channel_decode_socks5), which has the same shape: peek, need more, or consume the whole.
#include "proxy/socks.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <utility>

namespace tether::proxy {
namespace {

uint8_t ByteAt(std::string_view in, size_t i) { return static_cast<uint8_t>(in[i]); }

uint16_t PortAt(std::string_view in, size_t i) {
  return static_cast<uint16_t>((ByteAt(in, i) << 8) | ByteAt(in, i + 1));
}

std::string Ipv4Text(std::string_view four) {
  std::string out;
  for (size_t i = 0; i < 4; ++i) {
    if (i > 0) out += '.';
    out += std::to_string(ByteAt(four, i));
  }
  return out;
}

std::string Ipv6Text(std::string_view sixteen) {
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, sixteen.data(), text, sizeof text) == nullptr) return {};
  return text;
}

// The target's kind follows its text, whatever the address type said (ClassifyHost).
Target MakeTarget(std::string host, uint16_t port) {
  Target t;
  t.kind = ClassifyHost(host);
  t.host = std::move(host);
  t.port = port;
  return t;
}

ParseResult<Socks5Greeting> RefuseSocks5Greeting(std::string reason, bool answer) {
  Refusal r;
  r.reason = "SOCKS5 greeting: " + std::move(reason);
  if (answer) {
    r.code = static_cast<int>(Socks5Method::kNoAcceptable);
    r.reply = EncodeSocks5MethodSelection(Socks5Method::kNoAcceptable);
  }
  return ParseResult<Socks5Greeting>::Refused(std::move(r));
}

ParseResult<Target> RefuseSocks5Request(Socks5Reply code, std::string reason) {
  return ParseResult<Target>::Refused(Refusal{"SOCKS5 request: " + std::move(reason),
                                              static_cast<int>(code), EncodeSocks5Reply(code)});
}

ParseResult<Socks4Request> RefuseSocks4(std::string reason) {
  return ParseResult<Socks4Request>::Refused(Refusal{"SOCKS4 request: " + std::move(reason),
                                                     static_cast<int>(Socks4Reply::kRejected),
                                                     EncodeSocks4Reply(Socks4Reply::kRejected)});
}

std::string CommandName(Socks5Command command) {
  switch (command) {
    case Socks5Command::kConnect:
      return "CONNECT";
    case Socks5Command::kBind:
      return "BIND";
    case Socks5Command::kUdpAssociate:
      return "UDP ASSOCIATE";
  }
  return "command " + HexByte(static_cast<uint8_t>(command));
}

// Where the NUL ending a string at `start` is, looking no further than max_bytes + 1 bytes
// (the string and its NUL). npos and `too_long` when the bound is passed without one;
// npos alone when more bytes may still bring it.
size_t FindTerminator(std::string_view in, size_t start, size_t max_bytes, bool& too_long) {
  too_long = false;
  const size_t window = std::min(in.size() - start, max_bytes + 1);
  const size_t nul = in.substr(start, window).find('\0');
  if (nul != std::string_view::npos) return start + nul;
  too_long = window == max_bytes + 1;
  return std::string_view::npos;
}

}  // namespace

bool Socks5Greeting::Offers(Socks5Method method) const {
  return std::find(methods.begin(), methods.end(), static_cast<uint8_t>(method)) != methods.end();
}

ParseResult<Socks5Greeting> ParseSocks5Greeting(std::string_view in) {
  using Result = ParseResult<Socks5Greeting>;
  if (in.empty()) return Result::NeedMore();
  if (ByteAt(in, 0) != kSocks5Version) {
    // Not SOCKS5 at all: a method-selection reply would be gibberish to this client.
    return RefuseSocks5Greeting("version " + HexByte(ByteAt(in, 0)) + ", expected 0x05",
                                /*answer=*/false);
  }
  if (in.size() < 2) return Result::NeedMore();
  const size_t count = ByteAt(in, 1);
  if (count == 0) {
    return RefuseSocks5Greeting("offers no authentication method",
                                /*answer=*/true);
  }
  const size_t total = 2 + count;
  if (in.size() < total) return Result::NeedMore();
  Socks5Greeting greeting;
  greeting.methods.reserve(count);
  for (size_t i = 2; i < total; ++i) greeting.methods.push_back(ByteAt(in, i));
  return Result::Done(total, std::move(greeting));
}

Socks5Method SelectSocks5Method(const Socks5Greeting& greeting, SocksAuth auth) {
  const bool user_pass = greeting.Offers(Socks5Method::kUserPass);
  if (auth == SocksAuth::kUserPass) {
    return user_pass ? Socks5Method::kUserPass : Socks5Method::kNoAcceptable;
  }
  if (greeting.Offers(Socks5Method::kNoAuth)) return Socks5Method::kNoAuth;
  return user_pass ? Socks5Method::kUserPass : Socks5Method::kNoAcceptable;
}

ParseResult<Credentials> ParseSocks5UserPass(std::string_view in) {
  using Result = ParseResult<Credentials>;
  if (in.empty()) return Result::NeedMore();
  if (ByteAt(in, 0) != kSocks5UserPassVersion) {
    return Result::Refused(
        Refusal{"SOCKS5 username/password: version " + HexByte(ByteAt(in, 0)) + ", expected 0x01",
                kSocks5UserPassFailure, EncodeSocks5AuthStatus(false)});
  }
  if (in.size() < 2) return Result::NeedMore();
  const size_t user_len = ByteAt(in, 1);
  const size_t plen_at = 2 + user_len;
  if (in.size() < plen_at + 1) return Result::NeedMore();
  const size_t pass_len = ByteAt(in, plen_at);
  const size_t total = plen_at + 1 + pass_len;
  if (in.size() < total) return Result::NeedMore();
  Credentials c;
  c.username = std::string(in.substr(2, user_len));
  c.password = std::string(in.substr(plen_at + 1, pass_len));
  return Result::Done(total, std::move(c));
}

ParseResult<Target> ParseSocks5Request(std::string_view in) {
  using Result = ParseResult<Target>;
  if (in.empty()) return Result::NeedMore();
  if (ByteAt(in, 0) != kSocks5Version) {
    return RefuseSocks5Request(Socks5Reply::kGeneralFailure,
                               "version " + HexByte(ByteAt(in, 0)) + ", expected 0x05");
  }
  if (in.size() < 2) return Result::NeedMore();
  const auto command = static_cast<Socks5Command>(ByteAt(in, 1));
  if (command != Socks5Command::kConnect && command != Socks5Command::kBind &&
      command != Socks5Command::kUdpAssociate) {
    return RefuseSocks5Request(Socks5Reply::kCommandNotSupported,
                               "unknown command " + HexByte(ByteAt(in, 1)));
  }
  if (in.size() < 3) return Result::NeedMore();
  if (ByteAt(in, 2) != 0) {
    return RefuseSocks5Request(Socks5Reply::kGeneralFailure,
                               "reserved byte is " + HexByte(ByteAt(in, 2)) + ", must be 0x00");
  }
  if (in.size() < kSocks5RequestFixedBytes) return Result::NeedMore();

  size_t addr_at = kSocks5RequestFixedBytes;
  size_t addr_len = 0;
  const auto type = static_cast<Socks5AddressType>(ByteAt(in, 3));
  switch (type) {
    case Socks5AddressType::kIpv4:
      addr_len = kSocks5Ipv4Bytes;
      break;
    case Socks5AddressType::kIpv6:
      addr_len = kSocks5Ipv6Bytes;
      break;
    case Socks5AddressType::kDomain:
      if (in.size() < addr_at + 1) return Result::NeedMore();
      addr_len = ByteAt(in, addr_at);
      if (addr_len == 0) {
        return RefuseSocks5Request(Socks5Reply::kGeneralFailure, "empty domain name");
      }
      ++addr_at;
      break;
    default:
      return RefuseSocks5Request(Socks5Reply::kAddressTypeNotSupported,
                                 "unknown address type " + HexByte(ByteAt(in, 3)));
  }
  const size_t total = addr_at + addr_len + 2;
  if (in.size() < total) return Result::NeedMore();

  const std::string_view addr = in.substr(addr_at, addr_len);
  std::string host;
  switch (type) {
    case Socks5AddressType::kIpv4:
      host = Ipv4Text(addr);
      break;
    case Socks5AddressType::kIpv6:
      host = Ipv6Text(addr);
      break;
    case Socks5AddressType::kDomain:
      if (!IsAcceptableSocksHost(addr, kSocks5MaxDomainBytes)) {
        return RefuseSocks5Request(
            Socks5Reply::kGeneralFailure,
            "domain name \"" + Printable(addr) + "\" contains a NUL, control byte or space");
      }
      host = std::string(addr);
      break;
  }
  Target target = MakeTarget(std::move(host), PortAt(in, total - 2));
  if (target.port == 0) {
    return RefuseSocks5Request(Socks5Reply::kGeneralFailure,
                               "port 0 in " + target.ToString() + " is not a destination");
  }
  if (command != Socks5Command::kConnect) {
    return RefuseSocks5Request(
        Socks5Reply::kCommandNotSupported,
        CommandName(command) + " " + target.ToString() + " is not supported (CONNECT only)");
  }
  return Result::Done(total, std::move(target));
}

std::string EncodeSocks5MethodSelection(Socks5Method method) {
  return {static_cast<char>(kSocks5Version), static_cast<char>(method)};
}

std::string EncodeSocks5AuthStatus(bool accepted) {
  return {static_cast<char>(kSocks5UserPassVersion),
          static_cast<char>(accepted ? kSocks5UserPassSuccess : kSocks5UserPassFailure)};
}

std::string EncodeSocks5Reply(Socks5Reply reply) {
  return EncodeSocks5Reply(reply, Target{"0.0.0.0", 0, HostKind::kIpv4});
}

std::string EncodeSocks5Reply(Socks5Reply reply, const Target& bound) {
  std::string out = {static_cast<char>(kSocks5Version), static_cast<char>(reply), 0};
  unsigned char addr[16] = {};
  const HostKind kind = ClassifyHost(bound.host);
  if (kind == HostKind::kIpv6) {
    inet_pton(AF_INET6, bound.host.c_str(), addr);
    out += static_cast<char>(Socks5AddressType::kIpv6);
    out.append(reinterpret_cast<const char*>(addr), kSocks5Ipv6Bytes);
  } else if (kind == HostKind::kIpv4 || bound.host.empty()) {
    // An empty host is no name: it goes out as 0.0.0.0, the "unknown" address.
    if (kind == HostKind::kIpv4) inet_pton(AF_INET, bound.host.c_str(), addr);
    out += static_cast<char>(Socks5AddressType::kIpv4);
    out.append(reinterpret_cast<const char*>(addr), kSocks5Ipv4Bytes);
  } else {
    const size_t len = std::min(bound.host.size(), kSocks5MaxDomainBytes);
    out += static_cast<char>(Socks5AddressType::kDomain);
    out += static_cast<char>(len);
    out.append(bound.host, 0, len);
  }
  out += static_cast<char>(bound.port >> 8);
  out += static_cast<char>(bound.port & 0xff);
  return out;
}

ParseResult<Socks4Request> ParseSocks4Request(std::string_view in) {
  using Result = ParseResult<Socks4Request>;
  if (in.empty()) return Result::NeedMore();
  if (ByteAt(in, 0) != kSocks4Version) {
    return RefuseSocks4("version " + HexByte(ByteAt(in, 0)) + ", expected 0x04");
  }
  if (in.size() < 2) return Result::NeedMore();
  const auto command = static_cast<Socks4Command>(ByteAt(in, 1));
  if (command != Socks4Command::kConnect && command != Socks4Command::kBind) {
    return RefuseSocks4("unknown command " + HexByte(ByteAt(in, 1)));
  }
  if (in.size() < kSocks4FixedBytes) return Result::NeedMore();

  bool too_long = false;
  const size_t user_end = FindTerminator(in, kSocks4FixedBytes, kSocks4MaxUserIdBytes, too_long);
  if (too_long) {
    return RefuseSocks4("user id longer than " + std::to_string(kSocks4MaxUserIdBytes) + " bytes");
  }
  if (user_end == std::string_view::npos) return Result::NeedMore();

  Socks4Request request;
  request.user_id = std::string(in.substr(kSocks4FixedBytes, user_end - kSocks4FixedBytes));
  size_t total = user_end + 1;
  const std::string_view ip = in.substr(4, 4);
  // SOCKS4a: 0.0.0.x with x != 0 is "not an address, the hostname follows the user id";
  // no real destination is in 0.0.0.0/24.
  request.socks4a = ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0;
  std::string host;
  if (request.socks4a) {
    const size_t host_end = FindTerminator(in, total, kSocks4MaxHostnameBytes, too_long);
    if (too_long) {
      return RefuseSocks4("4a hostname longer than " + std::to_string(kSocks4MaxHostnameBytes) +
                          " bytes");
    }
    if (host_end == std::string_view::npos) return Result::NeedMore();
    const std::string_view name = in.substr(total, host_end - total);
    if (name.empty()) return RefuseSocks4("empty 4a hostname");
    if (!IsAcceptableSocksHost(name, kSocks4MaxHostnameBytes)) {
      return RefuseSocks4("4a hostname \"" + Printable(name) +
                          "\" contains a control byte or space");
    }
    host = std::string(name);
    total = host_end + 1;
  } else {
    host = Ipv4Text(ip);
  }
  request.target = MakeTarget(std::move(host), PortAt(in, 2));
  if (request.target.port == 0) {
    return RefuseSocks4("port 0 in " + request.target.ToString() + " is not a destination");
  }
  if (command == Socks4Command::kBind) {
    return RefuseSocks4("BIND " + request.target.ToString() + " is not supported (CONNECT only)");
  }
  return Result::Done(total, std::move(request));
}

std::string EncodeSocks4Reply(Socks4Reply reply) {
  std::string out(kSocks4ReplyBytes, '\0');
  out[0] = static_cast<char>(kSocks4ReplyVersion);
  out[1] = static_cast<char>(reply);
  return out;
}

}  // namespace tether::proxy
