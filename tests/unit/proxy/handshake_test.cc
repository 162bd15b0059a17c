#include "proxy/handshake.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "feed.h"
#include "proxy/http_proxy.h"
#include "proxy/socks.h"

namespace tether::proxy {
namespace {

using Step = ProxyHandshake::Step;

std::string S(const char* bytes, size_t n) { return std::string(bytes, n); }

const ProxyPolicy kOpen{false, {}};
const ProxyPolicy kLocked{true, {"alice", "s3cret"}};
// Credentials configured but not required: a client may send anything, or nothing.
const ProxyPolicy kOpenWithCredentials{false, {"alice", "s3cret"}};

// --- Client messages ---------------------------------------------------------------------

const std::string kGreetNoAuth = S("\x05\x01\x00", 3);
const std::string kGreetUserPass = S("\x05\x01\x02", 3);
const std::string kGreetBoth = S("\x05\x02\x00\x02", 4);
const std::string kMethodNoAuth = S("\x05\x00", 2);
const std::string kMethodUserPass = S("\x05\x02", 2);
const std::string kMethodNone = S("\x05\xff", 2);
const std::string kAuthOk = S("\x01\x00", 2);
const std::string kAuthFailed = S("\x01\x01", 2);

std::string UserPass(const std::string& user, const std::string& pass) {
  std::string out = {1, static_cast<char>(user.size())};
  out += user;
  out += static_cast<char>(pass.size());
  out += pass;
  return out;
}

const std::string kConnectDomain = S("\x05\x01\x00\x03\x0b", 5) + "example.com" + S("\x01\xbb", 2);
const std::string kConnectIpv4 = S("\x05\x01\x00\x01\x0a\x00\x00\x01\x00\x16", 10);
const std::string kConnectIpv6 =
    S("\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
      "\x20\xfb",
      22);
const std::string kSocks4 = S("\x04\x01\x00\x50\x7f\x00\x00\x01", 8) + "user" + S("\x00", 1);
const std::string kSocks4a =
    S("\x04\x01\x01\xbb\x00\x00\x00\x01\x00", 9) + "example.com" + S("\x00", 1);

const std::string kHttpConnect =
    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
// alice:s3cret, alice:wrong, bob:s3cret, alice:s3cre (a prefix of the password)
const std::string kHttpConnectAlice =
    "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n";
const std::string kHttpConnectWrongPassword =
    "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6d3Jvbmc=\r\n\r\n";
const std::string kHttpConnectWrongUser =
    "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic Ym9iOnMzY3JldA==\r\n\r\n";
const std::string kHttpConnectPasswordPrefix =
    "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6czNjcmU=\r\n\r\n";
const std::string kHttpConnectBearer =
    "CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\r\n";
const std::string kHttpGet =
    "GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
    "Proxy-Connection: keep-alive\r\n\r\n";
const std::string kHttpGetHead =
    "GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nVia: 1.1 tether\r\n"
    "Connection: close\r\n\r\n";
const std::string kHttpPostAlice =
    "POST http://10.0.0.1:8080/api HTTP/1.1\r\nContent-Length: 4\r\n"
    "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n";
const std::string kHttpPostHead =
    "POST /api HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nContent-Length: 4\r\nVia: 1.1 tether\r\n"
    "Connection: close\r\n\r\n";

const std::string k407 = EncodeHttpError(
    kHttpProxyAuthRequired, "this proxy needs the user and token that `tether env` prints");

// What a client sends after its request without waiting: a TLS ClientHello, a body.
const std::string kEarly = S("\x16\x03\x01\x02\x00\x01", 6) + "hello";

// --- Driving a handshake -----------------------------------------------------------------

struct Outcome {
  Step step = Step::kNeedMore;
  std::string reply;     // everything TakeReply() gave, in order
  size_t fed = 0;        // bytes fed when the step was no longer need-more
  std::string upstream;  // TakeUpstream() after kConnect
};

// One Feed per chunk; every chunk but the last must leave the handshake needing more.
Outcome FeedChunks(ProxyHandshake& h, const std::vector<std::string>& chunks) {
  Outcome o;
  for (size_t i = 0; i < chunks.size(); ++i) {
    o.step = h.Feed(chunks[i]);
    o.reply += h.TakeReply();
    o.fed += chunks[i].size();
    if (o.step != Step::kNeedMore) {
      EXPECT_EQ(i + 1, chunks.size()) << "finished before the last chunk";
      break;
    }
  }
  if (o.step == Step::kConnect) o.upstream = h.TakeUpstream();
  return o;
}

Outcome Whole(const ProxyPolicy& policy, const std::string& bytes) {
  ProxyHandshake h(policy);
  return FeedChunks(h, {bytes});
}

// One byte a call, as the slowest client; stops at the first step that is not need-more.
Outcome Bytewise(const ProxyPolicy& policy, const std::string& bytes) {
  ProxyHandshake h(policy);
  Outcome o;
  for (char c : bytes) {
    o.step = h.Feed(std::string_view(&c, 1));
    o.reply += h.TakeReply();
    ++o.fed;
    if (o.step != Step::kNeedMore) break;
  }
  if (o.step == Step::kConnect) o.upstream = h.TakeUpstream();
  return o;
}

// --- Handshakes that reach kConnect ------------------------------------------------------

struct ConnectCase {
  const char* what;
  ProxyPolicy policy;
  std::string request;  // everything the client sends up to and including the request
  std::string reply;    // everything written back before kConnect
  Target target;
  Protocol protocol;
  bool forwards_http = false;
  std::string head;  // the rewritten head of a forwarded HTTP request; "" for a tunnel
};

const std::vector<ConnectCase> kConnects = {
    {"SOCKS5 without auth, domain",
     kOpen,
     kGreetNoAuth + kConnectDomain,
     kMethodNoAuth,
     {"example.com", 443, HostKind::kName},
     Protocol::kSocks5,
     false,
     ""},
    {"SOCKS5 without auth, IPv4",
     kOpen,
     kGreetNoAuth + kConnectIpv4,
     kMethodNoAuth,
     {"10.0.0.1", 22, HostKind::kIpv4},
     Protocol::kSocks5,
     false,
     ""},
    {"SOCKS5 without auth, IPv6",
     kOpen,
     kGreetNoAuth + kConnectIpv6,
     kMethodNoAuth,
     {"2001:db8::1", 8443, HostKind::kIpv6},
     Protocol::kSocks5,
     false,
     ""},
    {"SOCKS5 offering both methods to an open proxy gets no-auth",
     kOpen,
     kGreetBoth + kConnectDomain,
     kMethodNoAuth,
     {"example.com", 443, HostKind::kName},
     Protocol::kSocks5,
     false,
     ""},
    {"SOCKS5 with the right user and password",
     kLocked,
     kGreetBoth + UserPass("alice", "s3cret") + kConnectDomain,
     kMethodUserPass + kAuthOk,
     {"example.com", 443, HostKind::kName},
     Protocol::kSocks5,
     false,
     ""},
    {"SOCKS5 offering only user/pass to an open proxy: any credentials do",
     kOpenWithCredentials,
     kGreetUserPass + UserPass("mallory", "guess") + kConnectIpv4,
     kMethodUserPass + kAuthOk,
     {"10.0.0.1", 22, HostKind::kIpv4},
     Protocol::kSocks5,
     false,
     ""},
    {"SOCKS5 offering only user/pass with empty credentials to an open proxy",
     kOpen,
     kGreetUserPass + UserPass("", "") + kConnectIpv4,
     kMethodUserPass + kAuthOk,
     {"10.0.0.1", 22, HostKind::kIpv4},
     Protocol::kSocks5,
     false,
     ""},
    {"SOCKS4",
     kOpen,
     kSocks4,
     "",
     {"127.0.0.1", 80, HostKind::kIpv4},
     Protocol::kSocks4,
     false,
     ""},
    {"SOCKS4a",
     kOpenWithCredentials,
     kSocks4a,
     "",
     {"example.com", 443, HostKind::kName},
     Protocol::kSocks4,
     false,
     ""},
    {"HTTP CONNECT without auth",
     kOpen,
     kHttpConnect,
     "",
     {"example.com", 443, HostKind::kName},
     Protocol::kHttp,
     false,
     ""},
    {"HTTP CONNECT with the right credentials",
     kLocked,
     kHttpConnectAlice,
     "",
     {"example.com", 443, HostKind::kName},
     Protocol::kHttp,
     false,
     ""},
    {"HTTP CONNECT with wrong credentials to an open proxy",
     kOpenWithCredentials,
     kHttpConnectWrongPassword,
     "",
     {"example.com", 443, HostKind::kName},
     Protocol::kHttp,
     false,
     ""},
    {"HTTP CONNECT with an unusable scheme to an open proxy",
     kOpenWithCredentials,
     kHttpConnectBearer,
     "",
     {"example.com", 443, HostKind::kName},
     Protocol::kHttp,
     false,
     ""},
    {"HTTP absolute-form GET",
     kOpen,
     kHttpGet,
     "",
     {"example.com", 80, HostKind::kName},
     Protocol::kHttp,
     true,
     kHttpGetHead},
    {"HTTP absolute-form POST with the right credentials",
     kLocked,
     kHttpPostAlice,
     "",
     {"10.0.0.1", 8080, HostKind::kIpv4},
     Protocol::kHttp,
     true,
     kHttpPostHead},
};

void ExpectConnect(const ConnectCase& c, const Outcome& o, const std::string& early,
                   const std::string& how) {
  SCOPED_TRACE(std::string(c.what) + ", " + how);
  ASSERT_EQ(o.step, Step::kConnect);
  EXPECT_EQ(o.reply, c.reply);
  EXPECT_EQ(o.upstream, c.head + early);
}

void ExpectAskedFor(const ConnectCase& c, const ProxyHandshake& h) {
  SCOPED_TRACE(c.what);
  EXPECT_EQ(h.target(), c.target);
  EXPECT_EQ(h.protocol(), c.protocol);
  EXPECT_EQ(h.forwards_http(), c.forwards_http);
  EXPECT_EQ(h.error(), "");
}

TEST(ProxyHandshake, ConnectsEveryProtocolFedWhole) {
  for (const ConnectCase& c : kConnects) {
    ProxyHandshake h(c.policy);
    ExpectConnect(c, FeedChunks(h, {c.request}), "", "whole");
    ExpectAskedFor(c, h);
  }
}

TEST(ProxyHandshake, ConnectsEveryProtocolFedByteByByteOnlyOnTheLastByte) {
  for (const ConnectCase& c : kConnects) {
    Outcome o = Bytewise(c.policy, c.request);
    ExpectConnect(c, o, "", "byte by byte");
    EXPECT_EQ(o.fed, c.request.size()) << c.what;
  }
}

TEST(ProxyHandshake, ConnectsEveryProtocolSplitAtEveryByteWithEarlyBytesBehind) {
  for (const ConnectCase& c : kConnects) {
    for (size_t k = 1; k < c.request.size(); ++k) {
      ProxyHandshake h(c.policy);
      Outcome o = FeedChunks(h, {c.request.substr(0, k), c.request.substr(k) + kEarly});
      ExpectConnect(c, o, kEarly, "split at " + std::to_string(k));
      ExpectAskedFor(c, h);
    }
  }
}

TEST(ProxyHandshake, KeepsBytesPipelinedAfterTheRequestForUpstream) {
  for (const ConnectCase& c : kConnects) {
    ExpectConnect(c, Whole(c.policy, c.request + kEarly), kEarly, "with early bytes");
  }
}

TEST(ProxyHandshake, AnswersEachSocks5StepAsSoonAsItsMessageIsIn) {
  ProxyHandshake h(kLocked);
  EXPECT_EQ(h.Feed(kGreetBoth), Step::kNeedMore);
  EXPECT_EQ(h.TakeReply(), kMethodUserPass);
  EXPECT_EQ(h.TakeReply(), "");
  EXPECT_EQ(h.Feed(UserPass("alice", "s3cret")), Step::kNeedMore);
  EXPECT_EQ(h.TakeReply(), kAuthOk);
  EXPECT_EQ(h.Feed(kConnectDomain), Step::kConnect);
  EXPECT_EQ(h.TakeReply(), "");
  EXPECT_EQ(h.TakeUpstream(), "");
}

TEST(ProxyHandshake, ForwardsPlainHttpAsTheRewrittenHeadAndTheBody) {
  ProxyHandshake h(kOpen);
  const std::string post =
      "POST http://10.0.0.1:8080/api HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
  ASSERT_EQ(h.Feed(post), Step::kConnect);
  EXPECT_TRUE(h.forwards_http());
  EXPECT_EQ(h.TakeUpstream(), kHttpPostHead + "body");
  EXPECT_EQ(h.TakeUpstream(), "");
  // The origin answers a forwarded request itself.
  EXPECT_EQ(h.Connected(), "");
}

TEST(ProxyHandshake, NeverForwardsTheProxyCredentialsToTheOrigin) {
  Outcome o = Whole(kLocked, kHttpPostAlice + "body");
  ASSERT_EQ(o.step, Step::kConnect);
  EXPECT_EQ(o.upstream.find("Proxy-Authorization"), std::string::npos) << o.upstream;
  EXPECT_EQ(o.upstream.find("YWxpY2U6czNjcmV0"), std::string::npos) << o.upstream;
}

TEST(ProxyHandshake, BusyAnswersEachProtocolOnceTheTargetIsNamed) {
  {
    // A client that offers only username/password is let through to its request.
    ProxyHandshake h = ProxyHandshake::Busy("at the cap");
    EXPECT_EQ(h.Feed(kGreetUserPass), Step::kNeedMore);
    EXPECT_EQ(h.TakeReply(), kMethodUserPass);
    EXPECT_EQ(h.Feed(UserPass("anyone", "x")), Step::kNeedMore);
    EXPECT_EQ(h.TakeReply(), kAuthOk);
    EXPECT_EQ(h.Feed(kConnectDomain), Step::kClose);
    EXPECT_EQ(h.TakeReply(), EncodeSocks5Reply(Socks5Reply::kGeneralFailure));
    EXPECT_EQ(h.error(), "at the cap");
  }
  {
    ProxyHandshake h = ProxyHandshake::Busy("at the cap");
    EXPECT_EQ(h.Feed(kSocks4a), Step::kClose);
    EXPECT_EQ(h.TakeReply(), EncodeSocks4Reply(Socks4Reply::kRejected));
  }
  {
    ProxyHandshake h = ProxyHandshake::Busy("at the cap");
    EXPECT_EQ(h.Feed(kHttpConnect), Step::kClose);
    std::string reply = h.TakeReply();
    EXPECT_EQ(reply.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << reply;
    EXPECT_NE(reply.find("too many connections"), std::string::npos) << reply;
    EXPECT_EQ(h.TakeUpstream(), "");
  }
}

// --- Handshakes that end in kClose -------------------------------------------------------

struct CloseCase {
  const char* what;
  ProxyPolicy policy;
  std::string bytes;
  std::string reply;  // everything written back, the refusal included
  std::string reason_part;
};

std::vector<CloseCase> CloseCases() {
  const std::string rejected4 = EncodeSocks4Reply(Socks4Reply::kRejected);
  return {
      {"SOCKS4 under auth", kLocked, kSocks4, rejected4, "SOCKS4 has no password"},
      {"SOCKS4a under auth", kLocked, kSocks4a, rejected4, "SOCKS4 has no password"},
      {"SOCKS5 offering only no-auth under auth", kLocked, kGreetNoAuth + kConnectDomain,
       kMethodNone, "offers no username/password"},
      {"SOCKS5 offering only GSSAPI", kOpen, S("\x05\x01\x01", 3), kMethodNone,
       "no method we support"},
      {"SOCKS5 offering no methods", kOpen, S("\x05\x00", 2), kMethodNone, "SOCKS5"},
      {"SOCKS5 with a wrong password", kLocked,
       kGreetBoth + UserPass("alice", "wrong") + kConnectDomain, kMethodUserPass + kAuthFailed,
       "wrong username or password"},
      {"SOCKS5 with a wrong user", kLocked, kGreetUserPass + UserPass("bob", "s3cret"),
       kMethodUserPass + kAuthFailed, "wrong username or password"},
      {"SOCKS5 with a prefix of the password", kLocked, kGreetUserPass + UserPass("alice", "s3cre"),
       kMethodUserPass + kAuthFailed, "wrong username or password"},
      {"SOCKS5 with the password and more", kLocked, kGreetUserPass + UserPass("alice", "s3cret!"),
       kMethodUserPass + kAuthFailed, "wrong username or password"},
      {"SOCKS5 with empty credentials", kLocked, kGreetUserPass + UserPass("", ""),
       kMethodUserPass + kAuthFailed, "wrong username or password"},
      {"SOCKS5 with user and password swapped", kLocked,
       kGreetUserPass + UserPass("s3cret", "alice"), kMethodUserPass + kAuthFailed,
       "wrong username or password"},
      {"SOCKS5 auth in the wrong version", kLocked,
       kGreetUserPass + S("\x05\x05", 2) + "alice" + S("\x06", 1) + "s3cret",
       kMethodUserPass + kAuthFailed, "username/password: version 0x05"},
      {"SOCKS5 BIND", kOpen, kGreetNoAuth + S("\x05\x02\x00\x01\x0a\x00\x00\x01\x00\x16", 10),
       kMethodNoAuth + EncodeSocks5Reply(Socks5Reply::kCommandNotSupported), "BIND"},
      {"SOCKS5 unknown address type", kOpen, kGreetNoAuth + S("\x05\x01\x00\x09", 4),
       kMethodNoAuth + EncodeSocks5Reply(Socks5Reply::kAddressTypeNotSupported), "0x09"},
      {"SOCKS4 BIND", kOpen, S("\x04\x02\x00\x50\x7f\x00\x00\x01\x00", 9), rejected4, "BIND"},
      {"HTTP CONNECT without credentials under auth", kLocked, kHttpConnect, k407,
       "no credentials"},
      {"HTTP CONNECT with a wrong password", kLocked, kHttpConnectWrongPassword, k407,
       "wrong credentials"},
      {"HTTP CONNECT with a wrong user", kLocked, kHttpConnectWrongUser, k407, "wrong credentials"},
      {"HTTP CONNECT with a prefix of the password", kLocked, kHttpConnectPasswordPrefix, k407,
       "wrong credentials"},
      {"HTTP CONNECT with another scheme", kLocked, kHttpConnectBearer, k407, "wrong credentials"},
      {"HTTP GET without credentials under auth", kLocked, kHttpGet, k407, "no credentials"},
      {"HTTP origin-form", kOpen, "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
       ParseHttpProxyRequest("GET / HTTP/1.1\r\nHost: x\r\n\r\n").refusal().reply, "host"},
      {"an SSH banner", kOpen, "SSH-2.0-OpenSSH_9.6\r\n\r\n",
       ParseHttpProxyRequest("SSH-2.0-OpenSSH_9.6\r\n\r\n").refusal().reply, ""},
      {"a TLS ClientHello", kOpen, S("\x16\x03\x01\x02\x00", 5), "", "first byte 0x16"},
      {"a NUL", kOpen, S("\x00\x05\x01\x00", 4), "", "first byte 0x00"},
      {"0xff", kLocked, S("\xff", 1), "", "first byte 0xff"},
      {"a digit", kOpen, "1 CONNECT", "", "first byte 0x31"},
      {"a JSON line", kOpen, "{\"verb\":\"status\"}\n", "", "first byte 0x7b"},
      {"a SOCKS version 6", kOpen, S("\x06\x01\x00", 3), "", "not a proxy protocol"},
  };
}

TEST(ProxyHandshake, RefusesEveryBadHandshakeTheSameWayWholeOrByteByByte) {
  for (const CloseCase& c : CloseCases()) {
    SCOPED_TRACE(c.what);
    ProxyHandshake h(c.policy);
    Outcome whole = FeedChunks(h, {c.bytes});
    ASSERT_EQ(whole.step, Step::kClose);
    EXPECT_EQ(whole.reply, c.reply);
    EXPECT_NE(h.error().find(c.reason_part), std::string::npos) << h.error();
    EXPECT_EQ(h.TakeUpstream(), "");

    Outcome slow = Bytewise(c.policy, c.bytes);
    EXPECT_EQ(slow.step, Step::kClose);
    EXPECT_EQ(slow.reply, c.reply);
  }
}

TEST(ProxyHandshake, RefusesSocks4WhenAuthIsRequired) {
  ProxyHandshake h(kLocked);
  // On the version byte: nothing the client sends after it could change the answer.
  EXPECT_EQ(h.Feed(S("\x04", 1)), Step::kClose);
  EXPECT_EQ(h.TakeReply(), EncodeSocks4Reply(Socks4Reply::kRejected));
  EXPECT_EQ(h.protocol(), Protocol::kSocks4);
}

TEST(ProxyHandshake, ClosesOnGarbageFirstBytesWithoutAnswering) {
  for (int first = 0; first < 256; ++first) {
    const std::string bytes = {static_cast<char>(first), 'x', 'y'};
    if (Sniff(bytes) != Protocol::kUnknown) continue;
    ProxyHandshake h(kOpen);
    EXPECT_EQ(h.Feed(bytes), Step::kClose) << HexByte(static_cast<uint8_t>(first));
    EXPECT_EQ(h.TakeReply(), "");
    EXPECT_NE(h.error().find(HexByte(static_cast<uint8_t>(first))), std::string::npos);
  }
}

TEST(ProxyHandshake, WaitsForTheFirstByteBeforeChoosingAProtocol) {
  ProxyHandshake h(kOpen);
  EXPECT_EQ(h.Feed(""), Step::kNeedMore);
  EXPECT_EQ(h.TakeReply(), "");
  EXPECT_EQ(h.error(), "");
}

TEST(ProxyHandshake, ChallengesHttpWithAProxyAuthenticateHeader) {
  Outcome o = Whole(kLocked, kHttpConnect);
  ASSERT_EQ(o.step, Step::kClose);
  EXPECT_EQ(o.reply.rfind("HTTP/1.1 407 ", 0), 0u) << o.reply;
  EXPECT_NE(o.reply.find("Proxy-Authenticate: Basic realm=\"tether\"\r\n"), std::string::npos);
}

TEST(ProxyHandshake, StaysClosedWhenFedAfterARefusal) {
  ProxyHandshake h(kLocked);
  ASSERT_EQ(h.Feed(kGreetNoAuth), Step::kClose);
  EXPECT_EQ(h.TakeReply(), kMethodNone);
  EXPECT_EQ(h.Feed(kConnectDomain), Step::kClose);
  EXPECT_EQ(h.TakeReply(), "");
  EXPECT_EQ(h.TakeUpstream(), "");
}

TEST(ProxyHandshake, SendsBytesFedAfterConnectUpstreamToo) {
  ProxyHandshake h(kOpen);
  ASSERT_EQ(h.Feed(kHttpConnect + "ab"), Step::kConnect);
  EXPECT_EQ(h.Feed("cd"), Step::kConnect);
  EXPECT_EQ(h.TakeReply(), "");
  EXPECT_EQ(h.TakeUpstream(), "abcd");
}

// --- Connected() and Failed() --------------------------------------------------------------

TEST(ProxyHandshake, AnswersSuccessInEachProtocol) {
  struct Case {
    std::string request;
    std::string reply;
  };
  const std::vector<Case> cases = {
      {kGreetNoAuth + kConnectDomain, S("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10)},
      {kSocks4, S("\x00\x5a\x00\x00\x00\x00\x00\x00", 8)},
      {kSocks4a, S("\x00\x5a\x00\x00\x00\x00\x00\x00", 8)},
      {kHttpConnect, "HTTP/1.1 200 Connection established\r\n\r\n"},
      {kHttpGet, ""},
  };
  for (const Case& c : cases) {
    ProxyHandshake h(kOpen);
    ASSERT_EQ(h.Feed(c.request), Step::kConnect) << c.request;
    EXPECT_EQ(h.Connected(), c.reply) << c.request;
  }
}

std::string Socks5ReplyBytes(int code) {
  return S("\x05", 1) + static_cast<char>(code) + S("\x00\x01\x00\x00\x00\x00\x00\x00", 8);
}

TEST(ProxyHandshake, AnswersEachConnectFailureWithTheClosestSocks5Code) {
  const std::vector<std::pair<ConnectFailure, int>> cases = {
      {ConnectFailure::kRefused, 0x05},  {ConnectFailure::kUnreachable, 0x04},
      {ConnectFailure::kTimedOut, 0x06}, {ConnectFailure::kNotAllowed, 0x02},
      {ConnectFailure::kOther, 0x01},
  };
  for (const auto& [why, code] : cases) {
    ProxyHandshake h(kOpen);
    ASSERT_EQ(h.Feed(kGreetNoAuth + kConnectDomain), Step::kConnect);
    EXPECT_EQ(h.Failed(why, "no"), Socks5ReplyBytes(code)) << code;
  }
}

TEST(ProxyHandshake, AnswersEveryConnectFailureInSocks4WithRejected) {
  for (ConnectFailure why :
       {ConnectFailure::kRefused, ConnectFailure::kUnreachable, ConnectFailure::kTimedOut,
        ConnectFailure::kNotAllowed, ConnectFailure::kOther}) {
    for (const std::string& request : {kSocks4, kSocks4a}) {
      ProxyHandshake h(kOpen);
      ASSERT_EQ(h.Feed(request), Step::kConnect);
      EXPECT_EQ(h.Failed(why, "no"), S("\x00\x5b\x00\x00\x00\x00\x00\x00", 8));
    }
  }
}

TEST(ProxyHandshake, AnswersEachConnectFailureWithTheClosestHttpStatusNamingTheTarget) {
  const std::vector<std::pair<ConnectFailure, std::string>> cases = {
      {ConnectFailure::kRefused, "HTTP/1.1 502 Bad Gateway\r\n"},
      {ConnectFailure::kUnreachable, "HTTP/1.1 502 Bad Gateway\r\n"},
      {ConnectFailure::kTimedOut, "HTTP/1.1 504 Gateway Timeout\r\n"},
      {ConnectFailure::kNotAllowed, "HTTP/1.1 403 Forbidden\r\n"},
      {ConnectFailure::kOther, "HTTP/1.1 502 Bad Gateway\r\n"},
  };
  for (const auto& [why, status_line] : cases) {
    for (const std::string& request : {kHttpConnect, kHttpGet}) {
      ProxyHandshake h(kOpen);
      ASSERT_EQ(h.Feed(request), Step::kConnect);
      const std::string reply = h.Failed(why, "connection refused");
      EXPECT_EQ(reply.rfind(status_line, 0), 0u) << reply;
      EXPECT_NE(reply.find("Connection: close\r\n"), std::string::npos) << reply;
      const std::string target = request == kHttpGet ? "example.com:80" : "example.com:443";
      EXPECT_NE(reply.find("cannot reach " + target + ": connection refused\n"), std::string::npos)
          << reply;
    }
  }
}

}  // namespace
}  // namespace tether::proxy
