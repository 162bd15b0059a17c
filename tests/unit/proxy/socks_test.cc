#include "proxy/socks.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "feed.h"

namespace tether::proxy {
namespace {

std::string S(const char* bytes, size_t n) { return std::string(bytes, n); }

Target Tcp(std::string host, uint16_t port, HostKind kind) {
  return Target{std::move(host), port, kind};
}

std::string Reply5(Socks5Reply code) { return EncodeSocks5Reply(code); }
const std::string kRejected4 = S("\x00\x5b\x00\x00\x00\x00\x00\x00", 8);

// What the client sends next; a parser must leave it alone.
const std::string kTrailer = S("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10);

// --- SOCKS5 greeting ---------------------------------------------------------------------

struct GreetingCase {
  std::string bytes;
  std::vector<uint8_t> methods;
};

std::vector<uint8_t> AllMethods(size_t n) {
  std::vector<uint8_t> m;
  for (size_t i = 0; i < n; ++i) m.push_back(static_cast<uint8_t>(i));
  return m;
}

std::string GreetingBytes(const std::vector<uint8_t>& methods) {
  std::string out = {5, static_cast<char>(methods.size())};
  for (uint8_t m : methods) out += static_cast<char>(m);
  return out;
}

const std::vector<GreetingCase> kGreetings = {
    {S("\x05\x01\x00", 3), {0x00}},
    {S("\x05\x01\x02", 3), {0x02}},
    {S("\x05\x02\x00\x02", 4), {0x00, 0x02}},
    {S("\x05\x03\x00\x01\x02", 5), {0x00, 0x01, 0x02}},
    {S("\x05\x01\x80", 3), {0x80}},                     // a private method: kept, never chosen
    {GreetingBytes(AllMethods(255)), AllMethods(255)},  // the most a greeting can offer
};

TEST(Socks5Greeting, ParsesEveryGreetingOnlyOnItsLastByte) {
  for (const GreetingCase& c : kGreetings) {
    auto got = FeedBytewise(ParseSocks5Greeting, c.bytes);
    ASSERT_TRUE(got.done()) << c.bytes.size() << " bytes";
    EXPECT_EQ(got.consumed(), c.bytes.size());
    EXPECT_EQ(got.value().methods, c.methods);
  }
}

TEST(Socks5Greeting, LeavesTheNextMessageInTheBuffer) {
  for (const GreetingCase& c : kGreetings) {
    auto got = FeedWithTrailer(ParseSocks5Greeting, c.bytes, kTrailer);
    ASSERT_TRUE(got.done());
    EXPECT_EQ(got.value().methods, c.methods);
  }
}

TEST(Socks5Greeting, RefusesAnotherVersionWithoutAnswering) {
  ExpectRefusedFrom(ParseSocks5Greeting, S("\x04\x01\x00", 3), 1, 0, "", "version 0x04");
}

TEST(Socks5Greeting, RefusesAGreetingWithNoMethodsWithNoAcceptable) {
  ExpectRefusedFrom(ParseSocks5Greeting, S("\x05\x00", 2), 2, 0xff, S("\x05\xff", 2),
                    "no authentication method");
}

struct SelectCase {
  std::vector<uint8_t> offered;
  SocksAuth auth;
  Socks5Method want;
};

TEST(Socks5Greeting, SelectsTheMethodThePolicyAllows) {
  const std::vector<SelectCase> cases = {
      {{0x00}, SocksAuth::kNone, Socks5Method::kNoAuth},
      {{0x00, 0x02}, SocksAuth::kNone, Socks5Method::kNoAuth},
      {{0x02, 0x00}, SocksAuth::kNone, Socks5Method::kNoAuth},
      // A client set up with credentials offers only user/pass; without auth it still gets in.
      {{0x02}, SocksAuth::kNone, Socks5Method::kUserPass},
      {{0x01}, SocksAuth::kNone, Socks5Method::kNoAcceptable},
      {{0x80, 0x03}, SocksAuth::kNone, Socks5Method::kNoAcceptable},
      {{0x00}, SocksAuth::kUserPass, Socks5Method::kNoAcceptable},
      {{0x00, 0x02}, SocksAuth::kUserPass, Socks5Method::kUserPass},
      {{0x02}, SocksAuth::kUserPass, Socks5Method::kUserPass},
      {{0x01, 0xff}, SocksAuth::kUserPass, Socks5Method::kNoAcceptable},
  };
  for (const SelectCase& c : cases) {
    Socks5Greeting g{c.offered};
    EXPECT_EQ(SelectSocks5Method(g, c.auth), c.want)
        << "offered " << c.offered.size() << " methods, auth " << static_cast<int>(c.auth);
  }
}

TEST(Socks5Greeting, EncodesTheMethodSelection) {
  EXPECT_EQ(EncodeSocks5MethodSelection(Socks5Method::kNoAuth), S("\x05\x00", 2));
  EXPECT_EQ(EncodeSocks5MethodSelection(Socks5Method::kUserPass), S("\x05\x02", 2));
  EXPECT_EQ(EncodeSocks5MethodSelection(Socks5Method::kNoAcceptable), S("\x05\xff", 2));
}

// --- RFC 1929 username/password ------------------------------------------------------------

struct UserPassCase {
  std::string bytes;
  Credentials want;
};

std::string UserPassBytes(const std::string& user, const std::string& pass) {
  std::string out = {1, static_cast<char>(user.size())};
  out += user;
  out += static_cast<char>(pass.size());
  out += pass;
  return out;
}

const std::vector<UserPassCase> kUserPass = {
    {S("\x01\x04user\x04pass", 11), {"user", "pass"}},
    {UserPassBytes("alice", "s3cret:with:colons"), {"alice", "s3cret:with:colons"}},
    {UserPassBytes("bin", S("p\x00w\xff", 4)), {"bin", S("p\x00w\xff", 4)}},
    {S("\x01\x00\x00", 3), {"", ""}},  // accepted: the caller's comparison refuses it
    {UserPassBytes(std::string(255, 'u'), std::string(255, 'p')),
     {std::string(255, 'u'), std::string(255, 'p')}},
};

TEST(Socks5UserPass, ParsesEveryMessageOnlyOnItsLastByte) {
  for (const UserPassCase& c : kUserPass) {
    auto got = FeedBytewise(ParseSocks5UserPass, c.bytes);
    ASSERT_TRUE(got.done());
    EXPECT_EQ(got.consumed(), c.bytes.size());
    EXPECT_EQ(got.value(), c.want);
  }
}

TEST(Socks5UserPass, LeavesTheRequestThatFollowsInTheBuffer) {
  for (const UserPassCase& c : kUserPass) {
    auto got = FeedWithTrailer(ParseSocks5UserPass, c.bytes, kTrailer);
    ASSERT_TRUE(got.done());
    EXPECT_EQ(got.value(), c.want);
  }
}

TEST(Socks5UserPass, RefusesAnotherVersionWithAFailureStatus) {
  ExpectRefusedFrom(ParseSocks5UserPass, S("\x05\x04user\x04pass", 11), 1, 0x01, S("\x01\x01", 2),
                    "version 0x05");
}

TEST(Socks5UserPass, EncodesTheStatus) {
  EXPECT_EQ(EncodeSocks5AuthStatus(true), S("\x01\x00", 2));
  EXPECT_EQ(EncodeSocks5AuthStatus(false), S("\x01\x01", 2));
}

// --- SOCKS5 request ------------------------------------------------------------------------

struct RequestCase {
  std::string bytes;
  Target want;
};

std::string DomainRequest(int command, const std::string& name, int port_hi, int port_lo) {
  std::string out = {5, static_cast<char>(command), 0, 3, static_cast<char>(name.size())};
  out += name;
  out += static_cast<char>(port_hi);
  out += static_cast<char>(port_lo);
  return out;
}

const std::string kV6Loopback = S("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
const std::string kV6Doc = S("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);

const std::vector<RequestCase> kRequests = {
    {S("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10), Tcp("127.0.0.1", 80, HostKind::kIpv4)},
    {S("\x05\x01\x00\x01\x0a\xff\x00\x07\xff\xff", 10), Tcp("10.255.0.7", 65535, HostKind::kIpv4)},
    {S("\x05\x01\x00\x04", 4) + kV6Loopback + S("\x01\xbb", 2), Tcp("::1", 443, HostKind::kIpv6)},
    {S("\x05\x01\x00\x04", 4) + kV6Doc + S("\x00\x16", 2), Tcp("2001:db8::1", 22, HostKind::kIpv6)},
    {DomainRequest(1, "example.com", 0x01, 0xbb), Tcp("example.com", 443, HostKind::kName)},
    {DomainRequest(1, "a", 0x00, 0x01), Tcp("a", 1, HostKind::kName)},
    // A name that is an address literal is an address.
    {DomainRequest(1, "10.0.0.1", 0x1f, 0x90), Tcp("10.0.0.1", 8080, HostKind::kIpv4)},
    {DomainRequest(1, "fe80::1", 0x00, 0x50), Tcp("fe80::1", 80, HostKind::kIpv6)},
    // Non-ASCII bytes pass: resolving fails later with a better message.
    {DomainRequest(1,
                   "b\xc3\xbc"
                   "cher.example",
                   0x00, 0x50),
     Tcp("b\xc3\xbc"
         "cher.example",
         80, HostKind::kName)},
    // The longest name the length byte can announce.
    {DomainRequest(1, std::string(255, 'x'), 0x00, 0x50),
     Tcp(std::string(255, 'x'), 80, HostKind::kName)},
};

TEST(Socks5Parser, ParsesEveryConnectRequestOnlyOnItsLastByte) {
  for (const RequestCase& c : kRequests) {
    auto got = FeedBytewise(ParseSocks5Request, c.bytes);
    ASSERT_TRUE(got.done()) << c.want.ToString();
    EXPECT_EQ(got.consumed(), c.bytes.size());
    EXPECT_EQ(got.value(), c.want);
  }
}

TEST(Socks5Parser, LeavesEarlyTunnelDataInTheBuffer) {
  for (const RequestCase& c : kRequests) {
    auto got = FeedWithTrailer(ParseSocks5Request, c.bytes, "GET / HTTP/1.1\r\n");
    ASSERT_TRUE(got.done());
    EXPECT_EQ(got.value(), c.want);
  }
}

struct RefusedCase {
  const char* what;
  std::string bytes;
  size_t refused_at;  // the buffered length at which the message is known bad
  Socks5Reply code;
  const char* reason;
};

const std::vector<RefusedCase> kRefusedRequests = {
    {"wrong version", S("\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10), 1,
     Socks5Reply::kGeneralFailure, "version 0x04"},
    {"unknown command", S("\x05\x09\x00\x01\x7f\x00\x00\x01\x00\x50", 10), 2,
     Socks5Reply::kCommandNotSupported, "unknown command 0x09"},
    {"reserved byte set", S("\x05\x01\x01\x01\x7f\x00\x00\x01\x00\x50", 10), 3,
     Socks5Reply::kGeneralFailure, "reserved byte is 0x01"},
    {"unknown address type", S("\x05\x01\x00\x02\x7f\x00\x00\x01\x00\x50", 10), 4,
     Socks5Reply::kAddressTypeNotSupported, "unknown address type 0x02"},
    {"empty domain", S("\x05\x01\x00\x03\x00\x00\x50", 7), 5, Socks5Reply::kGeneralFailure,
     "empty domain name"},
    {"NUL in domain", DomainRequest(1, S("evil\x00.com", 9), 0, 80), 16,
     Socks5Reply::kGeneralFailure, "domain name \"evil\\x00.com\""},
    {"space in domain", DomainRequest(1, "a b", 0, 80), 10, Socks5Reply::kGeneralFailure,
     "contains a NUL, control byte or space"},
    {"newline in domain", DomainRequest(1, "a\nb", 0, 80), 10, Socks5Reply::kGeneralFailure,
     "a\\x0ab"},
    {"port 0", S("\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x00", 10), 10, Socks5Reply::kGeneralFailure,
     "port 0 in 127.0.0.1:0"},
    {"BIND", S("\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", 10), 10,
     Socks5Reply::kCommandNotSupported, "BIND 127.0.0.1:80 is not supported"},
    {"UDP ASSOCIATE to a name", DomainRequest(3, "dns.example", 0, 53), 18,
     Socks5Reply::kCommandNotSupported, "UDP ASSOCIATE dns.example:53 is not supported"},
    {"UDP ASSOCIATE over IPv6", S("\x05\x03\x00\x04", 4) + kV6Loopback + S("\x00\x35", 2), 22,
     Socks5Reply::kCommandNotSupported, "UDP ASSOCIATE [::1]:53"},
};

TEST(Socks5Parser, RefusesEachBadRequestAsSoonAsItIsKnownWithItsReplyCode) {
  for (const RefusedCase& c : kRefusedRequests) {
    SCOPED_TRACE(c.what);
    ExpectRefusedFrom(ParseSocks5Request, c.bytes, c.refused_at, static_cast<int>(c.code),
                      Reply5(c.code), c.reason);
  }
}

TEST(Socks5Parser, RejectsUnknownAddressType) {
  auto got = ParseSocks5Request(S("\x05\x01\x00\x05", 4));
  ASSERT_TRUE(got.refused());
  EXPECT_EQ(got.refusal().reply, S("\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00", 10));
}

TEST(Socks5Parser, AnswersBindAndUdpAssociateWithCommandNotSupported) {
  for (int command : {2, 3}) {
    const std::string bytes = DomainRequest(command, "example.com", 0x01, 0xbb);
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_TRUE(ParseSocks5Request(bytes.substr(0, n)).need_more()) << n;
    }
    auto got = ParseSocks5Request(bytes);
    ASSERT_TRUE(got.refused());
    EXPECT_EQ(got.refusal().code, 0x07);
    EXPECT_EQ(got.refusal().reply, S("\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00", 10));
  }
}

TEST(Socks5Parser, EncodesRepliesWithTheBoundAddress) {
  EXPECT_EQ(EncodeSocks5Reply(Socks5Reply::kSucceeded),
            S("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10));
  EXPECT_EQ(EncodeSocks5Reply(Socks5Reply::kConnectionRefused),
            S("\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10));
  EXPECT_EQ(EncodeSocks5Reply(Socks5Reply::kSucceeded, Tcp("10.1.2.3", 1080, HostKind::kIpv4)),
            S("\x05\x00\x00\x01\x0a\x01\x02\x03\x04\x38", 10));
  EXPECT_EQ(EncodeSocks5Reply(Socks5Reply::kSucceeded, Tcp("::1", 8080, HostKind::kIpv6)),
            S("\x05\x00\x00\x04", 4) + kV6Loopback + S("\x1f\x90", 2));
  EXPECT_EQ(EncodeSocks5Reply(Socks5Reply::kHostUnreachable, Tcp("gw.local", 1, HostKind::kName)),
            S("\x05\x04\x00\x03\x08gw.local\x00\x01", 15));
  // The text decides, not the kind; an empty host is the unknown address.
  EXPECT_EQ(EncodeSocks5Reply(Socks5Reply::kSucceeded, Tcp("127.0.0.1", 2, HostKind::kName)),
            S("\x05\x00\x00\x01\x7f\x00\x00\x01\x00\x02", 10));
  EXPECT_EQ(EncodeSocks5Reply(Socks5Reply::kSucceeded, Tcp("", 0, HostKind::kName)),
            EncodeSocks5Reply(Socks5Reply::kSucceeded));
  const std::string long_name(300, 'n');
  const std::string encoded =
      EncodeSocks5Reply(Socks5Reply::kSucceeded, Tcp(long_name, 80, HostKind::kName));
  EXPECT_EQ(encoded.size(), 4u + 1 + 255 + 2);
  EXPECT_EQ(static_cast<uint8_t>(encoded[4]), 255);
}

TEST(Socks5Parser, ParsesARequestItsOwnEncoderWrote) {
  // A reply has the request's layout; reading one back checks both ends agree.
  for (const Target& t :
       {Tcp("192.0.2.9", 443, HostKind::kIpv4), Tcp("2001:db8::1", 22, HostKind::kIpv6),
        Tcp("example.org", 8443, HostKind::kName)}) {
    std::string bytes = EncodeSocks5Reply(Socks5Reply::kSucceeded, t);
    bytes[1] = static_cast<char>(Socks5Command::kConnect);
    auto got = ParseSocks5Request(bytes);
    ASSERT_TRUE(got.done()) << t.ToString();
    EXPECT_EQ(got.value(), t);
  }
}

TEST(Socks5Parser, HandlesAPipelinedHandshakeStepByStep) {
  // Greeting, credentials and request sent at once, without waiting for any reply.
  std::string buffered = S("\x05\x02\x00\x02", 4) + UserPassBytes("u", "p") +
                         DomainRequest(1, "example.com", 0x00, 0x50) + "early";
  auto greeting = ParseSocks5Greeting(buffered);
  ASSERT_TRUE(greeting.done());
  EXPECT_EQ(SelectSocks5Method(greeting.value(), SocksAuth::kUserPass), Socks5Method::kUserPass);
  buffered.erase(0, greeting.consumed());
  auto creds = ParseSocks5UserPass(buffered);
  ASSERT_TRUE(creds.done());
  EXPECT_EQ(creds.value(), (Credentials{"u", "p"}));
  buffered.erase(0, creds.consumed());
  auto request = ParseSocks5Request(buffered);
  ASSERT_TRUE(request.done());
  EXPECT_EQ(request.value(), Tcp("example.com", 80, HostKind::kName));
  buffered.erase(0, request.consumed());
  EXPECT_EQ(buffered, "early");
}

// --- SOCKS4 / SOCKS4a ----------------------------------------------------------------------

struct Socks4Case {
  std::string bytes;
  Socks4Request want;
};

std::string Socks4Bytes(int command, int port_hi, int port_lo, std::string ip4,
                        const std::string& user, const std::string* host = nullptr) {
  std::string out = {4, static_cast<char>(command), static_cast<char>(port_hi),
                     static_cast<char>(port_lo)};
  out += ip4;
  out += user;
  out += '\0';
  if (host != nullptr) {
    out += *host;
    out += '\0';
  }
  return out;
}

const std::string kIp4a = S("\x00\x00\x00\x01", 4);

Socks4Case Socks4aCase(const std::string& user, const std::string& host, HostKind kind) {
  return {Socks4Bytes(1, 0x01, 0xbb, kIp4a, user, &host),
          Socks4Request{Tcp(host, 443, kind), user, true}};
}

const std::vector<Socks4Case> kSocks4 = {
    {Socks4Bytes(1, 0x00, 0x50, S("\x7f\x00\x00\x01", 4), ""),
     Socks4Request{Tcp("127.0.0.1", 80, HostKind::kIpv4), "", false}},
    {Socks4Bytes(1, 0x00, 0x16, S("\xc0\xa8\x01\x02", 4), "alice"),
     Socks4Request{Tcp("192.168.1.2", 22, HostKind::kIpv4), "alice", false}},
    // 0.0.0.0 is plain SOCKS4 (4a needs a non-zero last byte).
    {Socks4Bytes(1, 0x00, 0x50, S("\x00\x00\x00\x00", 4), "x"),
     Socks4Request{Tcp("0.0.0.0", 80, HostKind::kIpv4), "x", false}},
    {Socks4Bytes(1, 0x00, 0x50, S("\x01\x00\x00\x01", 4), "x"),
     Socks4Request{Tcp("1.0.0.1", 80, HostKind::kIpv4), "x", false}},
    {Socks4Bytes(1, 0x00, 0x50, S("\x7f\x00\x00\x01", 4), std::string(255, 'u')),
     Socks4Request{Tcp("127.0.0.1", 80, HostKind::kIpv4), std::string(255, 'u'), false}},
    Socks4aCase("bob", "example.com", HostKind::kName),
    Socks4aCase("", "example.com", HostKind::kName),
    Socks4aCase("bob", "2001:db8::2", HostKind::kIpv6),
    Socks4aCase(std::string(255, 'u'), std::string(255, 'h'), HostKind::kName),
};

TEST(Socks4Parser, ParsesEveryRequestOnlyOnItsLastByte) {
  for (const Socks4Case& c : kSocks4) {
    auto got = FeedBytewise(ParseSocks4Request, c.bytes);
    ASSERT_TRUE(got.done()) << c.want.target.ToString();
    EXPECT_EQ(got.consumed(), c.bytes.size());
    EXPECT_EQ(got.value(), c.want);
  }
}

TEST(Socks4Parser, LeavesEarlyTunnelDataInTheBuffer) {
  for (const Socks4Case& c : kSocks4) {
    auto got = FeedWithTrailer(ParseSocks4Request, c.bytes, S("\x16\x03\x01\x00", 4));
    ASSERT_TRUE(got.done());
    EXPECT_EQ(got.value(), c.want);
  }
}

struct Socks4RefusedCase {
  const char* what;
  std::string bytes;
  size_t refused_at;
  const char* reason;
};

const std::string kLongUser(256, 'u');
const std::string kLongHost(256, 'h');
const std::string kEmptyHost;
const std::string kSpacedHost = "a b.example";
const std::string kTabHost = "a\tb";

const std::vector<Socks4RefusedCase> kRefusedSocks4 = {
    {"wrong version", S("\x05\x01\x00\x50\x7f\x00\x00\x01\x00", 9), 1, "version 0x05"},
    {"unknown command", S("\x04\x03\x00\x50\x7f\x00\x00\x01\x00", 9), 2, "unknown command 0x03"},
    {"BIND", S("\x04\x02\x00\x50\x7f\x00\x00\x01\x00", 9), 9, "BIND 127.0.0.1:80 is not supported"},
    {"port 0", S("\x04\x01\x00\x00\x7f\x00\x00\x01\x00", 9), 9, "port 0"},
    {"user id past the bound", Socks4Bytes(1, 0, 80, S("\x7f\x00\x00\x01", 4), kLongUser), 8 + 256,
     "user id longer than 255 bytes"},
    {"4a hostname past the bound", Socks4Bytes(1, 0, 80, kIp4a, "u", &kLongHost), 8 + 2 + 256,
     "4a hostname longer than 255 bytes"},
    {"empty 4a hostname", Socks4Bytes(1, 0, 80, kIp4a, "u", &kEmptyHost), 11, "empty 4a hostname"},
    {"space in 4a hostname", Socks4Bytes(1, 0, 80, kIp4a, "", &kSpacedHost), 21,
     "\"a b.example\" contains a control byte or space"},
    {"tab in 4a hostname", Socks4Bytes(1, 0, 80, kIp4a, "", &kTabHost), 13, "a\\x09b"},
    {"4a BIND", Socks4Bytes(2, 0, 80, kIp4a, "", &kSpacedHost), 21, "contains a control byte"},
};

TEST(Socks4Parser, RefusesEachBadRequestAsSoonAsItIsKnownWithRejected) {
  for (const Socks4RefusedCase& c : kRefusedSocks4) {
    SCOPED_TRACE(c.what);
    ExpectRefusedFrom(ParseSocks4Request, c.bytes, c.refused_at,
                      static_cast<int>(Socks4Reply::kRejected), kRejected4, c.reason);
  }
}

TEST(Socks4Parser, Socks4aBindIsRefusedNamingTheHost) {
  const std::string host = "example.com";
  auto got = ParseSocks4Request(Socks4Bytes(2, 0, 80, kIp4a, "", &host));
  ASSERT_TRUE(got.refused());
  EXPECT_NE(got.refusal().reason.find("BIND example.com:80"), std::string::npos);
}

TEST(Socks4Parser, EncodesGrantedAndRejected) {
  EXPECT_EQ(EncodeSocks4Reply(Socks4Reply::kGranted), S("\x00\x5a\x00\x00\x00\x00\x00\x00", 8));
  EXPECT_EQ(EncodeSocks4Reply(Socks4Reply::kRejected), kRejected4);
}

// --- Target ----------------------------------------------------------------------------------

TEST(ProxyTarget, PrintsIpv6InBracketsAndEscapesOddBytes) {
  EXPECT_EQ(Tcp("example.com", 443, HostKind::kName).ToString(), "example.com:443");
  EXPECT_EQ(Tcp("10.0.0.1", 80, HostKind::kIpv4).ToString(), "10.0.0.1:80");
  EXPECT_EQ(Tcp("::1", 22, HostKind::kIpv6).ToString(), "[::1]:22");
  EXPECT_EQ(Tcp("b\xc3\xbc\\x", 1, HostKind::kName).ToString(), "b\\xc3\\xbc\\x5cx:1");
}

TEST(ProxyTarget, ClassifiesAddressLiterals) {
  EXPECT_EQ(ClassifyHost("127.0.0.1"), HostKind::kIpv4);
  EXPECT_EQ(ClassifyHost("::ffff:10.0.0.1"), HostKind::kIpv6);
  EXPECT_EQ(ClassifyHost("fe80::1"), HostKind::kIpv6);
  EXPECT_EQ(ClassifyHost("example.com"), HostKind::kName);
  EXPECT_EQ(ClassifyHost("1.2.3"), HostKind::kName);
  EXPECT_EQ(ClassifyHost("1.2.3.4 "), HostKind::kName);
  EXPECT_EQ(ClassifyHost(std::string("1.2.3.4\0", 8)), HostKind::kName);
  EXPECT_EQ(ClassifyHost(""), HostKind::kName);
}

TEST(ProxyTarget, PrintableCutsLongInput) {
  EXPECT_EQ(Printable(std::string(10, 'a'), 4), "aaaa...");
  EXPECT_EQ(Printable(S("\x00\x7f", 2)), "\\x00\\x7f");
  EXPECT_EQ(HexByte(0xab), "0xab");
}

}  // namespace
}  // namespace tether::proxy
