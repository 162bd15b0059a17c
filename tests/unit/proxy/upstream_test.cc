#include "proxy/upstream.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "feed.h"

namespace tether::proxy {
namespace {

using Kind = UpstreamProxy::Kind;
using Step = UpstreamHandshake::Step;

std::string S(const char* bytes, size_t n) { return std::string(bytes, n); }

UpstreamProxy Proxy(Kind kind, std::string host, uint16_t port,
                    std::optional<Credentials> credentials = std::nullopt) {
  return UpstreamProxy{kind, std::move(host), port, std::move(credentials)};
}

// --- ParseUpstreamUrl ----------------------------------------------------------------------

struct UrlCase {
  std::string url;
  UpstreamProxy want;
};

const std::vector<UrlCase> kGoodUrls = {
    {"http://127.0.0.1:7890", Proxy(Kind::kHttp, "127.0.0.1", 7890)},
    {"http://proxy.example", Proxy(Kind::kHttp, "proxy.example", 80)},
    {"http://proxy.example/", Proxy(Kind::kHttp, "proxy.example", 80)},
    {"http://proxy.example:3128/", Proxy(Kind::kHttp, "proxy.example", 3128)},
    {"HTTP://Proxy.Example:3128", Proxy(Kind::kHttp, "Proxy.Example", 3128)},
    {"http://h:1", Proxy(Kind::kHttp, "h", 1)},
    {"http://h:65535", Proxy(Kind::kHttp, "h", 65535)},
    {"http://h:08080", Proxy(Kind::kHttp, "h", 8080)},
    {"socks5://127.0.0.1", Proxy(Kind::kSocks5, "127.0.0.1", 1080)},
    {"socks5://127.0.0.1:9050", Proxy(Kind::kSocks5, "127.0.0.1", 9050)},
    {"socks5h://localhost:1081", Proxy(Kind::kSocks5, "localhost", 1081)},
    {"SOCKS5H://localhost", Proxy(Kind::kSocks5, "localhost", 1080)},
    {"socks://gw", Proxy(Kind::kSocks5, "gw", 1080)},
    {"http://[::1]:3128", Proxy(Kind::kHttp, "::1", 3128)},
    {"http://[::1]", Proxy(Kind::kHttp, "::1", 80)},
    {"http://[::1]/", Proxy(Kind::kHttp, "::1", 80)},
    {"socks5://[2001:db8::1]", Proxy(Kind::kSocks5, "2001:db8::1", 1080)},
    {"http://user:pass@h:8080", Proxy(Kind::kHttp, "h", 8080, Credentials{"user", "pass"})},
    {"socks5://user:pass@[::1]:1081",
     Proxy(Kind::kSocks5, "::1", 1081, Credentials{"user", "pass"})},
    {"http://user@h", Proxy(Kind::kHttp, "h", 80, Credentials{"user", ""})},
    {"http://user:@h", Proxy(Kind::kHttp, "h", 80, Credentials{"user", ""})},
    {"http://:tok@h", Proxy(Kind::kHttp, "h", 80, Credentials{"", "tok"})},
    {"http://us%40er:p%3As%2Fs%25@h", Proxy(Kind::kHttp, "h", 80, Credentials{"us@er", "p:s/s%"})},
    {"http://u:%e2%82%ac@h", Proxy(Kind::kHttp, "h", 80, Credentials{"u", "\xe2\x82\xac"})},
    // A raw ':' after the first belongs to the password, a raw '@' before the last too.
    {"http://u:a:b@h", Proxy(Kind::kHttp, "h", 80, Credentials{"u", "a:b"})},
    {"http://u:p@ss@h", Proxy(Kind::kHttp, "h", 80, Credentials{"u", "p@ss"})},
};

TEST(UpstreamUrl, ParsesEveryGoodUrl) {
  for (const UrlCase& c : kGoodUrls) {
    auto got = ParseUpstreamUrl(c.url);
    ASSERT_TRUE(got.ok()) << c.url << ": " << got.error().ToString();
    EXPECT_EQ(*got, c.want) << c.url;
  }
}

struct BadUrlCase {
  std::string url;
  std::string why;
};

const std::vector<BadUrlCase> kBadUrls = {
    {"", "no scheme"},
    {"127.0.0.1:7890", "no scheme"},
    {"proxy.example", "no scheme"},
    {"https://proxy.example", "scheme https is not supported"},
    {"socks4://proxy.example", "scheme socks4 is not supported"},
    {"socks4a://proxy.example", "scheme socks4a is not supported"},
    {"ftp://proxy.example", "scheme ftp is not supported"},
    {"://proxy.example", "is not supported"},
    {"http://", "no host"},
    {"http:///", "no host"},
    {"http://:8080", "no host"},
    {"http://user:pass@", "no host"},
    {"http://user:pass@:8080", "no host"},
    {"http://[]:8080", "no host"},
    {"http://h:", "bad port"},
    {"http://h:http", "bad port"},
    {"http://h:80a", "bad port"},
    {"http://h:-1", "bad port"},
    {"http://h:+80", "bad port"},
    {"http://h:123456", "bad port"},
    {"http://h: 80", "bad port"},
    {"http://h:0", "port out of range"},
    {"http://h:65536", "port out of range"},
    {"http://h:99999", "port out of range"},
    {"http://h/path", "a path is not expected"},
    {"http://h:80/x/", "a path is not expected"},
    {"http://h//", "a path is not expected"},
    {"http://[::1", "unterminated ["},
    {"http://[::1]x", "junk after ]"},
    {"http://[::1]8080", "junk after ]"},
    {"http://[::1]:", "bad port"},
    {"http://[::1]:0", "port out of range"},
    {"http://::1", "brackets"},
    {"http://::1:8080", "brackets"},
    {"http://2001:db8::1", "brackets"},
    {"http://u%zz:p@h", "bad percent-encoding"},
    {"http://u:p%4@h", "bad percent-encoding"},
    {"http://u:p%@h", "bad percent-encoding"},
};

TEST(UpstreamUrl, RefusesEveryBadUrlSayingWhy) {
  for (const BadUrlCase& c : kBadUrls) {
    auto got = ParseUpstreamUrl(c.url);
    ASSERT_FALSE(got.ok()) << c.url << " parsed as " << got->ToString();
    EXPECT_EQ(got.error().step, "upstream");
    EXPECT_NE(got.error().message.find(c.why), std::string::npos)
        << c.url << ": " << got.error().message;
    EXPECT_NE(got.error().hint, "") << c.url;
  }
}

TEST(UpstreamUrl, NeverQuotesThePasswordInAnError) {
  for (const std::string url :
       {"http://alice:hunter2@h:0", "http://alice:hunter2@h/path", "https://alice:hunter2@h",
        "http://alice:hunter2@", "http://alice:hunter2%zz@h", "http://alice:hunter2@::1",
        "alice:hunter2@proxy:8080"}) {
    auto got = ParseUpstreamUrl(url);
    ASSERT_FALSE(got.ok()) << url;
    EXPECT_EQ(got.error().ToString().find("hunter2"), std::string::npos) << got.error().ToString();
    EXPECT_NE(got.error().message.find("alice"), std::string::npos) << got.error().message;
  }
}

TEST(UpstreamUrl, PrintsWithoutThePassword) {
  EXPECT_EQ(Proxy(Kind::kHttp, "127.0.0.1", 7890).ToString(), "http://127.0.0.1:7890");
  EXPECT_EQ(Proxy(Kind::kSocks5, "::1", 1080, Credentials{"alice", "hunter2"}).ToString(),
            "socks5://alice@[::1]:1080");
  auto parsed = ParseUpstreamUrl("socks5h://alice:hunter2@gw");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->ToString(), "socks5://alice@gw:1080");
}

TEST(UpstreamUrl, ParsesWhatItPrints) {
  for (const UrlCase& c : kGoodUrls) {
    if (c.want.credentials) continue;
    auto again = ParseUpstreamUrl(c.want.ToString());
    ASSERT_TRUE(again.ok()) << c.want.ToString();
    EXPECT_EQ(*again, c.want);
  }
}

// --- UpstreamFromEnvironment ---------------------------------------------------------------

using Env = std::map<std::string, std::string>;

std::optional<UpstreamProxy> FromEnv(const Env& env, const std::string& host, bool plain_http) {
  auto getenv = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  return UpstreamFromEnvironment(getenv, Target{host, 443, ClassifyHost(host)}, plain_http);
}

struct EnvCase {
  const char* what;
  Env env;
  std::string host;
  bool plain_http;
  std::optional<std::string> want;  // the proxy's ToString(), nullopt for direct
};

const std::vector<EnvCase> kEnvironments = {
    {"nothing set", {}, "example.com", false, std::nullopt},
    {"nothing set, plain http", {}, "example.com", true, std::nullopt},
    {"a tunnel uses https_proxy",
     {{"https_proxy", "http://p:1"}},
     "example.com",
     false,
     "http://p:1"},
    {"plain http uses http_proxy",
     {{"http_proxy", "http://p:2"}},
     "example.com",
     true,
     "http://p:2"},
    {"a tunnel ignores http_proxy",
     {{"http_proxy", "http://p:2"}},
     "example.com",
     false,
     std::nullopt},
    {"plain http ignores https_proxy",
     {{"https_proxy", "http://p:1"}},
     "example.com",
     true,
     std::nullopt},
    {"each picks its own",
     {{"https_proxy", "http://p:1"}, {"http_proxy", "http://p:2"}},
     "example.com",
     true,
     "http://p:2"},
    {"a tunnel falls back to all_proxy",
     {{"all_proxy", "socks5://s:3"}},
     "example.com",
     false,
     "socks5://s:3"},
    {"plain http falls back to all_proxy",
     {{"all_proxy", "socks5://s:3"}},
     "example.com",
     true,
     "socks5://s:3"},
    {"https_proxy before all_proxy",
     {{"https_proxy", "http://p:1"}, {"all_proxy", "socks5://s:3"}},
     "example.com",
     false,
     "http://p:1"},
    {"upper case when lower is absent",
     {{"HTTPS_PROXY", "http://P:1"}},
     "example.com",
     false,
     "http://P:1"},
    {"upper case ALL_PROXY", {{"ALL_PROXY", "socks5://S:3"}}, "example.com", true, "socks5://S:3"},
    {"lower case before upper case",
     {{"https_proxy", "http://lower:1"}, {"HTTPS_PROXY", "http://upper:1"}},
     "example.com",
     false,
     "http://lower:1"},
    {"an empty lower case falls to upper case",
     {{"https_proxy", ""}, {"HTTPS_PROXY", "http://upper:1"}},
     "example.com",
     false,
     "http://upper:1"},
    {"an empty value falls to all_proxy",
     {{"https_proxy", ""}, {"all_proxy", "socks5://s:3"}},
     "example.com",
     false,
     "socks5://s:3"},
    {"a value that does not parse",
     {{"https_proxy", "proxy:8080"}},
     "example.com",
     false,
     std::nullopt},
    {"an unsupported scheme", {{"https_proxy", "https://p:1"}}, "example.com", false, std::nullopt},
    {"credentials are kept",
     {{"https_proxy", "http://alice:s3cret@p:1"}},
     "example.com",
     false,
     "http://alice@p:1"},
    {"no_proxy * exempts everything",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "*"}},
     "example.com",
     false,
     std::nullopt},
    {"no_proxy names the host",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "example.com"}},
     "example.com",
     false,
     std::nullopt},
    {"no_proxy name covers subdomains",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "example.com"}},
     "www.example.com",
     false,
     std::nullopt},
    {"no_proxy name is not a bare suffix",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "example.com"}},
     "notexample.com",
     false,
     "http://p:1"},
    {"no_proxy .suffix covers subdomains",
     {{"https_proxy", "http://p:1"}, {"no_proxy", ".example.com"}},
     "a.b.example.com",
     false,
     std::nullopt},
    {"no_proxy .suffix covers the domain itself",
     {{"https_proxy", "http://p:1"}, {"no_proxy", ".example.com"}},
     "example.com",
     false,
     std::nullopt},
    {"no_proxy is case-insensitive",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "Example.COM"}},
     "www.EXAMPLE.com",
     false,
     std::nullopt},
    {"no_proxy ignores a port",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "example.com:8443"}},
     "example.com",
     false,
     std::nullopt},
    {"no_proxy in a list with blanks and empty entries",
     {{"https_proxy", "http://p:1"}, {"no_proxy", " localhost ,, internal.corp , "}},
     "git.internal.corp",
     false,
     std::nullopt},
    {"no_proxy names other hosts",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "localhost,internal.corp"}},
     "example.com",
     false,
     "http://p:1"},
    {"no_proxy with an IPv4 address",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "localhost,127.0.0.1"}},
     "127.0.0.1",
     false,
     std::nullopt},
    {"no_proxy with an IPv4 address is exact",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "127.0.0.1"}},
     "127.0.0.10",
     false,
     "http://p:1"},
    {"no_proxy with an IPv4 address and a port",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "10.0.0.1:8080"}},
     "10.0.0.1",
     false,
     std::nullopt},
    {"no_proxy with an IPv6 address",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "::1"}},
     "::1",
     false,
     std::nullopt},
    {"no_proxy with an IPv6 address in brackets",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "[::1]"}},
     "::1",
     false,
     std::nullopt},
    {"no_proxy with an IPv6 address in brackets and a port",
     {{"https_proxy", "http://p:1"}, {"no_proxy", "[2001:db8::1]:443"}},
     "2001:db8::1",
     false,
     std::nullopt},
    {"NO_PROXY in upper case",
     {{"https_proxy", "http://p:1"}, {"NO_PROXY", "example.com"}},
     "example.com",
     false,
     std::nullopt},
    {"no_proxy applies to plain http and all_proxy too",
     {{"all_proxy", "socks5://s:3"}, {"no_proxy", "example.com"}},
     "example.com",
     true,
     std::nullopt},
};

TEST(UpstreamFromEnvironment, ChoosesTheProxyAsCurlDoes) {
  for (const EnvCase& c : kEnvironments) {
    auto got = FromEnv(c.env, c.host, c.plain_http);
    if (!c.want) {
      EXPECT_FALSE(got.has_value()) << c.what << ": got " << got->ToString();
    } else {
      ASSERT_TRUE(got.has_value()) << c.what;
      EXPECT_EQ(got->ToString(), *c.want) << c.what;
    }
  }
}

TEST(UpstreamFromEnvironment, KeepsThePasswordFromTheVariable) {
  auto got = FromEnv({{"https_proxy", "http://alice:s%3Acret@p:1"}}, "example.com", false);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->credentials, (Credentials{"alice", "s:cret"}));
}

// --- UpstreamHandshake: HTTP CONNECT -------------------------------------------------------

const Target kExample{"example.com", 443, HostKind::kName};
const Target kIpv4{"10.1.2.3", 8080, HostKind::kIpv4};
const Target kIpv6{"2001:db8::1", 443, HostKind::kIpv6};
const UpstreamProxy kHttpProxy = Proxy(Kind::kHttp, "127.0.0.1", 7890);
const UpstreamProxy kHttpProxyAlice =
    Proxy(Kind::kHttp, "127.0.0.1", 7890, Credentials{"alice", "s3cret"});
const UpstreamProxy kSocksProxy = Proxy(Kind::kSocks5, "127.0.0.1", 1080);
const UpstreamProxy kSocksProxyAlice =
    Proxy(Kind::kSocks5, "127.0.0.1", 1080, Credentials{"alice", "s3cret"});

struct Transcript {
  Step step = Step::kNeedMore;
  std::string output;  // everything TakeOutput() gave, the first message included
  std::string rest;
  std::string error;
  bool refused = false;
};

// Feeds `answer` in the given chunks, collecting output after each; every chunk but the last
// must leave the handshake needing more.
Transcript Drive(const UpstreamProxy& proxy, const Target& target,
                 const std::vector<std::string>& chunks) {
  UpstreamHandshake h(proxy, target);
  Transcript r;
  r.output = h.TakeOutput();
  for (size_t i = 0; i < chunks.size(); ++i) {
    r.step = h.Feed(chunks[i]);
    r.output += h.TakeOutput();
    if (r.step != Step::kNeedMore) {
      EXPECT_EQ(i + 1, chunks.size()) << "finished before the last chunk";
      break;
    }
  }
  EXPECT_FALSE(h.TakeOutputPending());
  r.rest = h.TakeRest();
  r.error = h.error();
  r.refused = h.refused();
  return r;
}

// The same answer fed whole, byte by byte, and split in two at every byte boundary, must
// give the same run.
void ExpectSameAtEverySplit(const UpstreamProxy& proxy, const Target& target,
                            const std::string& answer, const Transcript& want) {
  auto same = [&](const Transcript& got, const std::string& how) {
    SCOPED_TRACE(how);
    EXPECT_EQ(got.step, want.step);
    EXPECT_EQ(got.output, want.output);
    // After a failure nothing is the target's: what is left over means nothing.
    if (want.step == Step::kDone) {
      EXPECT_EQ(got.rest, want.rest);
    }
    EXPECT_EQ(got.error, want.error);
    EXPECT_EQ(got.refused, want.refused);
  };
  same(Drive(proxy, target, {answer}), "whole");
  // Byte by byte, up to the step that ends it: bytes after it are not fed.
  {
    UpstreamHandshake h(proxy, target);
    Transcript r;
    r.output = h.TakeOutput();
    for (char c : answer) {
      r.step = h.Feed(std::string_view(&c, 1));
      r.output += h.TakeOutput();
      if (r.step != Step::kNeedMore) break;
    }
    r.error = h.error();
    r.refused = h.refused();
    EXPECT_EQ(r.step, want.step) << "byte by byte";
    EXPECT_EQ(r.output, want.output) << "byte by byte";
    EXPECT_EQ(r.error, want.error) << "byte by byte";
  }
  for (size_t k = 1; k < answer.size(); ++k) {
    UpstreamHandshake h(proxy, target);
    Transcript r;
    r.output = h.TakeOutput();
    r.step = h.Feed(answer.substr(0, k));
    r.output += h.TakeOutput();
    if (r.step == Step::kNeedMore) {
      r.step = h.Feed(answer.substr(k));
      r.output += h.TakeOutput();
    } else {
      // It ended within the first part: the rest arrives later, as the target's.
      EXPECT_EQ(h.Feed(answer.substr(k)), r.step);
    }
    r.rest = h.TakeRest();
    r.error = h.error();
    r.refused = h.refused();
    same(r, "split at " + std::to_string(k));
  }
}

const std::string kConnectExample =
    "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";

TEST(UpstreamHandshake, SendsConnectFirst) {
  EXPECT_EQ(UpstreamHandshake(kHttpProxy, kExample).TakeOutput(), kConnectExample);
  EXPECT_EQ(UpstreamHandshake(kHttpProxy, kIpv6).TakeOutput(),
            "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n");
  EXPECT_EQ(UpstreamHandshake(kHttpProxy, kIpv4).TakeOutput(),
            "CONNECT 10.1.2.3:8080 HTTP/1.1\r\nHost: 10.1.2.3:8080\r\n\r\n");
}

TEST(UpstreamHandshake, SendsBasicCredentialsWithConnect) {
  UpstreamHandshake h(kHttpProxyAlice, kExample);
  EXPECT_TRUE(h.TakeOutputPending());
  EXPECT_EQ(h.TakeOutput(),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
            "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n");
  EXPECT_FALSE(h.TakeOutputPending());
  EXPECT_EQ(h.TakeOutput(), "");
}

TEST(UpstreamHandshake, OpensTheTunnelOnA200) {
  for (const std::string answer :
       {"HTTP/1.1 200 Connection established\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\n",
        "HTTP/1.1 200 Connection established\r\nProxy-Agent: squid\r\n\r\n", "HTTP/1.1 200 OK\n\n",
        "HTTP/1.1 204 No Content\r\n\r\n"}) {
    Transcript want{Step::kDone, kConnectExample, "", "", false};
    ExpectSameAtEverySplit(kHttpProxy, kExample, answer, want);
  }
}

TEST(UpstreamHandshake, HandsOnBytesPipelinedAfterThe200) {
  const std::string banner = "SSH-2.0-OpenSSH_9.6\r\n";
  const std::string http_after = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  for (const auto& [answer, rest] : std::vector<std::pair<std::string, std::string>>{
           {"HTTP/1.1 200 Connection established\r\n\r\n", banner},
           {"HTTP/1.1 200 Connection established\r\n\r\n", S("\x00\r\n\r\n\x01", 6)},
           // The target's own bytes may hold an empty line of either kind.
           {"HTTP/1.1 200 Connection established\r\n\r\n", http_after},
           {"HTTP/1.1 200 OK\n\n", http_after},
           {"HTTP/1.1 200 OK\n\n", "\n\n"},
       }) {
    Transcript want{Step::kDone, kConnectExample, rest, "", false};
    ExpectSameAtEverySplit(kHttpProxy, kExample, answer + rest, want);
  }
}

TEST(UpstreamHandshake, FailsOnA407WithoutBlamingTheTarget) {
  Transcript got =
      Drive(kHttpProxyAlice, kExample,
            {"HTTP/1.1 407 Proxy Authentication Required\r\n"
             "Proxy-Authenticate: Basic realm=\"squid\"\r\nContent-Length: 0\r\n\r\n"});
  EXPECT_EQ(got.step, Step::kFailed);
  EXPECT_NE(got.error.find("407 Proxy Authentication Required"), std::string::npos) << got.error;
  EXPECT_NE(got.error.find("http://alice@127.0.0.1:7890"), std::string::npos) << got.error;
  EXPECT_EQ(got.error.find("s3cret"), std::string::npos) << got.error;
  // The target was never asked for: our credentials were refused.
  EXPECT_FALSE(got.refused);
}

TEST(UpstreamHandshake, ReportsOtherStatusesAsTheTargetRefused) {
  for (const std::string answer : {"HTTP/1.1 403 Forbidden\r\n\r\n",
                                   "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad",
                                   "HTTP/1.0 504 Gateway Timeout\n\n", "HTTP/1.1 301 Moved\r\n\r\n",
                                   "HTTP/1.1 100 Continue\r\n\r\n"}) {
    Transcript got = Drive(kHttpProxy, kExample, {answer});
    EXPECT_EQ(got.step, Step::kFailed) << answer;
    EXPECT_TRUE(got.refused) << answer;
    EXPECT_NE(got.error.find("CONNECT example.com:443"), std::string::npos) << got.error;
    EXPECT_NE(got.error.find(answer.substr(9, 3)), std::string::npos) << got.error;
  }
}

TEST(UpstreamHandshake, FailsOnAnAnswerThatIsNotHttp) {
  for (const std::string answer :
       {"<html><body>hello</body></html>\r\n\r\n", "HTTP/2 200\r\n\r\n", "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1\r\n\r\n", "HTTP/1.1 20\r\n\r\n", "ICY 200 OK\r\n\r\n"}) {
    Transcript got = Drive(kHttpProxy, kExample, {answer});
    EXPECT_EQ(got.step, Step::kFailed) << answer;
    EXPECT_FALSE(got.refused) << answer;
    EXPECT_NE(got.error.find("not an HTTP answer"), std::string::npos) << got.error;
  }
}

TEST(UpstreamHandshake, FailsAtOnceOnAnAnswerThatCannotBecomeHttp) {
  // A SOCKS5 proxy or an sshd on the configured port answers without an empty line, and
  // perhaps not at all until it is written to again: waiting for one would hang the client.
  for (const std::string& answer : std::vector<std::string>{
           S("\x05\xff", 2), "SSH-2.0-OpenSSH_9.6\r\n", S("\x15\x03\x03\x00\x02", 5), "HTTP/2"}) {
    Transcript got = Drive(kHttpProxy, kExample, {answer});
    EXPECT_EQ(got.step, Step::kFailed) << Printable(answer);
    EXPECT_NE(got.error.find("not an HTTP answer"), std::string::npos) << got.error;
  }
}

TEST(UpstreamHandshake, WaitsWhileTheAnswerCanStillBeHttp) {
  for (const std::string answer : {"H", "HTTP/1.", "HTTP/1.1 200", "HTTP/1.1 200 OK\r\n"}) {
    UpstreamHandshake h(kHttpProxy, kExample);
    EXPECT_EQ(h.Feed(answer), Step::kNeedMore) << answer;
  }
}

TEST(UpstreamHandshake, FailsOnAnEndlessAnswer) {
  UpstreamHandshake h(kHttpProxy, kExample);
  Step step = h.Feed("HTTP/1.1 200 OK\r\n");
  const std::string header = "X-Filler: " + std::string(100, 'x') + "\r\n";
  for (int i = 0; i < 1000 && step == Step::kNeedMore; ++i) step = h.Feed(header);
  EXPECT_EQ(step, Step::kFailed);
  EXPECT_NE(h.error().find("too long"), std::string::npos) << h.error();
}

TEST(UpstreamHandshake, StaysFailedWhenFedAgain) {
  UpstreamHandshake h(kHttpProxy, kExample);
  ASSERT_EQ(h.Feed("HTTP/1.1 403 Forbidden\r\n\r\n"), Step::kFailed);
  EXPECT_EQ(h.Feed("HTTP/1.1 200 OK\r\n\r\n"), Step::kFailed);
  EXPECT_EQ(h.Feed(""), Step::kFailed);
}

TEST(UpstreamHandshake, KeepsBytesFedAfterDoneForTheTarget) {
  UpstreamHandshake h(kHttpProxy, kExample);
  ASSERT_EQ(h.Feed("HTTP/1.1 200 OK\r\n\r\nab"), Step::kDone);
  EXPECT_EQ(h.Feed("cd"), Step::kDone);
  EXPECT_EQ(h.TakeRest(), "abcd");
  EXPECT_EQ(h.TakeRest(), "");
}

// --- UpstreamHandshake: SOCKS5 -------------------------------------------------------------

const std::string kGreetNoAuth = S("\x05\x01\x00", 3);
const std::string kGreetBoth = S("\x05\x02\x00\x02", 4);
const std::string kAliceAuth = S("\x01\x05", 2) + "alice" + S("\x06", 1) + "s3cret";
const std::string kConnectExampleSocks =
    S("\x05\x01\x00\x03\x0b", 5) + "example.com" + S("\x01\xbb", 2);
const std::string kConnectIpv4Socks = S("\x05\x01\x00\x01\x0a\x01\x02\x03\x1f\x90", 10);
const std::string kConnectIpv6Socks =
    S("\x05\x01\x00\x04\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
      "\x01\xbb",
      22);

const std::string kMethodNoAuth = S("\x05\x00", 2);
const std::string kMethodUserPass = S("\x05\x02", 2);
const std::string kAuthOk = S("\x01\x00", 2);
const std::string kSucceededIpv4 = S("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);

TEST(UpstreamHandshake, GreetsASocks5ProxyWithTheMethodsItCanDo) {
  EXPECT_EQ(UpstreamHandshake(kSocksProxy, kExample).TakeOutput(), kGreetNoAuth);
  EXPECT_EQ(UpstreamHandshake(kSocksProxyAlice, kExample).TakeOutput(), kGreetBoth);
}

TEST(UpstreamHandshake, EncodesEachKindOfTargetExactly) {
  struct Case {
    Target target;
    std::string request;
  };
  const std::vector<Case> cases = {
      {kExample, kConnectExampleSocks},
      {kIpv4, kConnectIpv4Socks},
      {kIpv6, kConnectIpv6Socks},
      // The text decides, not the kind a caller set.
      {Target{"10.1.2.3", 8080, HostKind::kName}, kConnectIpv4Socks},
      {Target{"::ffff:1.2.3.4", 1, HostKind::kIpv6},
       S("\x05\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x01\x02\x03\x04"
         "\x00\x01",
         22)},
      {Target{std::string(255, 'a'), 65535, HostKind::kName},
       S("\x05\x01\x00\x03\xff", 5) + std::string(255, 'a') + S("\xff\xff", 2)},
  };
  for (const Case& c : cases) {
    UpstreamHandshake h(kSocksProxy, c.target);
    EXPECT_EQ(h.TakeOutput(), kGreetNoAuth);
    EXPECT_EQ(h.Feed(kMethodNoAuth), Step::kNeedMore);
    EXPECT_EQ(h.TakeOutput(), c.request) << c.target.ToString();
  }
}

TEST(UpstreamHandshake, FailsOnAHostNameTooLongForSocks5) {
  UpstreamHandshake h(kSocksProxy, Target{std::string(256, 'a'), 443, HostKind::kName});
  EXPECT_EQ(h.TakeOutput(), kGreetNoAuth);
  EXPECT_EQ(h.Feed(kMethodNoAuth), Step::kFailed);
  EXPECT_NE(h.error().find("too long"), std::string::npos) << h.error();
  // No half-written request left for a careless caller to send.
  EXPECT_FALSE(h.TakeOutputPending());
}

TEST(UpstreamHandshake, ConnectsThroughSocks5WithoutAuth) {
  Transcript want{Step::kDone, kGreetNoAuth + kConnectExampleSocks, "", "", false};
  ExpectSameAtEverySplit(kSocksProxy, kExample, kMethodNoAuth + kSucceededIpv4, want);
}

TEST(UpstreamHandshake, ConnectsThroughSocks5WithUserAndPassword) {
  Transcript want{Step::kDone, kGreetBoth + kAliceAuth + kConnectExampleSocks, "", "", false};
  ExpectSameAtEverySplit(kSocksProxyAlice, kExample, kMethodUserPass + kAuthOk + kSucceededIpv4,
                         want);
}

TEST(UpstreamHandshake, SkipsAuthWhenTheSocks5ProxyNeedsNone) {
  Transcript want{Step::kDone, kGreetBoth + kConnectExampleSocks, "", "", false};
  ExpectSameAtEverySplit(kSocksProxyAlice, kExample, kMethodNoAuth + kSucceededIpv4, want);
}

TEST(UpstreamHandshake, SendsEachSocks5MessageOnlyAfterItsAnswer) {
  UpstreamHandshake h(kSocksProxyAlice, kIpv6);
  EXPECT_EQ(h.TakeOutput(), kGreetBoth);
  EXPECT_EQ(h.Feed(S("\x05", 1)), Step::kNeedMore);
  EXPECT_FALSE(h.TakeOutputPending());
  EXPECT_EQ(h.Feed(S("\x02", 1)), Step::kNeedMore);
  EXPECT_EQ(h.TakeOutput(), kAliceAuth);
  EXPECT_EQ(h.Feed(S("\x01", 1)), Step::kNeedMore);
  EXPECT_FALSE(h.TakeOutputPending());
  EXPECT_EQ(h.Feed(S("\x00", 1)), Step::kNeedMore);
  EXPECT_EQ(h.TakeOutput(), kConnectIpv6Socks);
  EXPECT_EQ(h.Feed(kSucceededIpv4), Step::kDone);
  EXPECT_FALSE(h.TakeOutputPending());
}

TEST(UpstreamHandshake, ReadsASocks5ReplyWithEachAddressType) {
  const std::string early = "SSH-2.0-x\r\n";
  const std::vector<std::string> replies = {
      kSucceededIpv4,
      S("\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38", 10),
      S("\x05\x00\x00\x03\x09", 5) + "localhost" + S("\x04\x38", 2),
      S("\x05\x00\x00\x03\x00\x00\x00", 7),  // an empty name: odd, still well framed
      S("\x05\x00\x00\x04", 4) + std::string(15, '\0') + S("\x01\x04\x38", 3),
  };
  for (const std::string& reply : replies) {
    SCOPED_TRACE(Printable(reply));
    Transcript want{Step::kDone, kGreetNoAuth + kConnectExampleSocks, early, "", false};
    ExpectSameAtEverySplit(kSocksProxy, kExample, kMethodNoAuth + reply + early, want);
  }
}

TEST(UpstreamHandshake, FailsOnASocks5ReplyWithAnUnknownAddressType) {
  Transcript got = Drive(kSocksProxy, kExample,
                         {kMethodNoAuth + S("\x05\x00\x00\x02\x00\x00\x00\x00\x00\x00", 10)});
  EXPECT_EQ(got.step, Step::kFailed);
  EXPECT_NE(got.error.find("bad address type"), std::string::npos) << got.error;
}

TEST(UpstreamHandshake, ReportsASocks5FailureCodeAsTheTargetRefused) {
  for (int code = 1; code <= 8; ++code) {
    const std::string reply =
        S("\x05", 1) + static_cast<char>(code) + S("\x00\x01\x00\x00\x00\x00\x00\x00", 8);
    Transcript want{Step::kFailed, kGreetNoAuth + kConnectExampleSocks, "",
                    "upstream socks5://127.0.0.1:1080: refused example.com:443 (SOCKS5 code " +
                        HexByte(static_cast<uint8_t>(code)) + ")",
                    true};
    ExpectSameAtEverySplit(kSocksProxy, kExample, kMethodNoAuth + reply, want);
  }
}

TEST(UpstreamHandshake, FailsWhenTheSocks5ProxyRefusesTheCredentials) {
  Transcript want{Step::kFailed, kGreetBoth + kAliceAuth, "",
                  "upstream socks5://alice@127.0.0.1:1080: wrong username or password", false};
  ExpectSameAtEverySplit(kSocksProxyAlice, kExample, kMethodUserPass + S("\x01\x01", 2), want);
}

TEST(UpstreamHandshake, FailsWhenTheSocks5ProxyWantsCredentialsWeDoNotHave) {
  Transcript got = Drive(kSocksProxy, kExample, {kMethodUserPass});
  EXPECT_EQ(got.step, Step::kFailed);
  EXPECT_NE(got.error.find("wants a username and password"), std::string::npos) << got.error;
  EXPECT_FALSE(got.refused);
}

TEST(UpstreamHandshake, FailsWhenTheSocks5ProxyAcceptsNoneOfOurMethods) {
  for (const UpstreamProxy& proxy : {kSocksProxy, kSocksProxyAlice}) {
    Transcript got = Drive(proxy, kExample, {S("\x05\xff", 2)});
    EXPECT_EQ(got.step, Step::kFailed);
    EXPECT_FALSE(got.refused);
  }
}

TEST(UpstreamHandshake, FailsWhenTheSocks5ProxyIsNotOne) {
  Transcript got = Drive(kSocksProxy, kExample, {"HTTP/1.1 400 Bad Request\r\n\r\n"});
  EXPECT_EQ(got.step, Step::kFailed);
  EXPECT_NE(got.error.find("not a SOCKS5 proxy"), std::string::npos) << got.error;
  got = Drive(kSocksProxy, kExample, {kMethodNoAuth + S("\x04\x5a\x00\x00\x00\x00\x00\x00", 8)});
  EXPECT_EQ(got.step, Step::kFailed);
  EXPECT_NE(got.error.find("not a SOCKS5 answer"), std::string::npos) << got.error;
}

TEST(UpstreamHandshake, StaysFailedAfterASocks5Failure) {
  UpstreamHandshake h(kSocksProxy, kExample);
  ASSERT_EQ(h.Feed(S("\x05\xff", 2)), Step::kFailed);
  EXPECT_EQ(h.Feed(kSucceededIpv4), Step::kFailed);
}

// --- ToAbsoluteForm ------------------------------------------------------------------------

const std::string kOriginHead =
    "GET /x?y=1 HTTP/1.1\r\nHost: example.com\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n";

TEST(ToAbsoluteForm, PutsTheOriginIntoTheRequestLine) {
  EXPECT_EQ(ToAbsoluteForm(kOriginHead + "body", Target{"example.com", 80, HostKind::kName},
                           std::nullopt),
            "GET http://example.com/x?y=1 HTTP/1.1\r\nHost: example.com\r\nVia: 1.1 tether\r\n"
            "Connection: close\r\n\r\nbody");
}

TEST(ToAbsoluteForm, NamesAPortOtherThan80) {
  EXPECT_EQ(ToAbsoluteForm("POST / HTTP/1.0\r\nHost: h:8080\r\n\r\n",
                           Target{"h", 8080, HostKind::kName}, std::nullopt),
            "POST http://h:8080/ HTTP/1.0\r\nHost: h:8080\r\n\r\n");
  EXPECT_EQ(
      ToAbsoluteForm("GET /a HTTP/1.1\r\n\r\n", Target{"::1", 8080, HostKind::kIpv6}, std::nullopt),
      "GET http://[::1]:8080/a HTTP/1.1\r\n\r\n");
  EXPECT_EQ(ToAbsoluteForm("GET /a HTTP/1.1\r\n\r\n", Target{"10.0.0.1", 80, HostKind::kIpv4},
                           std::nullopt),
            "GET http://10.0.0.1/a HTTP/1.1\r\n\r\n");
}

TEST(ToAbsoluteForm, AddsTheUpstreamCredentialsAfterTheRequestLine) {
  EXPECT_EQ(ToAbsoluteForm(kOriginHead, Target{"example.com", 8080, HostKind::kName},
                           Credentials{"alice", "s3cret"}),
            "GET http://example.com:8080/x?y=1 HTTP/1.1\r\n"
            "Proxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n"
            "Host: example.com\r\nVia: 1.1 tether\r\nConnection: close\r\n\r\n");
}

TEST(ToAbsoluteForm, LeavesSomethingThatIsNotARequestLineAlone) {
  const Target t{"example.com", 80, HostKind::kName};
  for (const std::string head : {"", "GET", "GET /x HTTP/1.1", "GET\r\n /x"}) {
    EXPECT_EQ(ToAbsoluteForm(head, t, Credentials{"a", "b"}), head) << head;
  }
}

}  // namespace
}  // namespace tether::proxy
