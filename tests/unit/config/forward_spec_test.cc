#include "config/forward_spec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tether::config {
namespace {

Endpoint Tcp(std::string host, uint16_t port) { return Endpoint{std::move(host), port, ""}; }
Endpoint Unix(std::string path) { return Endpoint{"", 0, std::move(path)}; }

ForwardSpec Spec(ForwardKind kind, Endpoint listen, Endpoint target = {}, bool dynamic = false) {
  ForwardSpec s;
  s.kind = kind;
  s.listen = std::move(listen);
  s.target = std::move(target);
  s.dynamic = dynamic || kind == ForwardKind::kDynamic;
  return s;
}

constexpr auto L = ForwardKind::kLocal;
constexpr auto R = ForwardKind::kRemote;
constexpr auto D = ForwardKind::kDynamic;

struct ValidCase {
  ForwardKind kind;
  const char* spec;
  ForwardSpec want;
};

// The examples at the top of src/config/forward_spec.cc, in the same order.
const std::vector<ValidCase> kValid = {
    {L, "8000:localhost:8000", Spec(L, Tcp("", 8000), Tcp("localhost", 8000))},
    {L, "127.0.0.1:8000:gpu-node:80", Spec(L, Tcp("127.0.0.1", 8000), Tcp("gpu-node", 80))},
    {L, "*:8000:localhost:80", Spec(L, Tcp("*", 8000), Tcp("localhost", 80))},
    {L, ":8000:localhost:80", Spec(L, Tcp("*", 8000), Tcp("localhost", 80))},
    {L, "localhost:8000:localhost:80", Spec(L, Tcp("localhost", 8000), Tcp("localhost", 80))},
    {L, "[::1]:8000:[fe80::1]:80", Spec(L, Tcp("::1", 8000), Tcp("fe80::1", 80))},
    {L, "8000:/run/app.sock", Spec(L, Tcp("", 8000), Unix("/run/app.sock"))},
    {L, "127.0.0.1:8000:/run/app.sock", Spec(L, Tcp("127.0.0.1", 8000), Unix("/run/app.sock"))},
    {L, "/tmp/local.sock:localhost:80", Spec(L, Unix("/tmp/local.sock"), Tcp("localhost", 80))},
    {L, "/tmp/local.sock:/run/app.sock", Spec(L, Unix("/tmp/local.sock"), Unix("/run/app.sock"))},
    {L, "[/tmp/a:b.sock]:localhost:80", Spec(L, Unix("/tmp/a:b.sock"), Tcp("localhost", 80))},
    {R, "8080:localhost:80", Spec(R, Tcp("", 8080), Tcp("localhost", 80))},
    {R, "0.0.0.0:8080:localhost:80", Spec(R, Tcp("0.0.0.0", 8080), Tcp("localhost", 80))},
    {R, "0:localhost:80", Spec(R, Tcp("", 0), Tcp("localhost", 80))},
    {R, "8080:/tmp/app.sock", Spec(R, Tcp("", 8080), Unix("/tmp/app.sock"))},
    {R, "/run/r.sock:localhost:80", Spec(R, Unix("/run/r.sock"), Tcp("localhost", 80))},
    {R, "/run/r.sock:/tmp/app.sock", Spec(R, Unix("/run/r.sock"), Unix("/tmp/app.sock"))},
    {R, "1080", Spec(R, Tcp("", 1080), {}, /*dynamic=*/true)},
    {R, "*:1080", Spec(R, Tcp("*", 1080), {}, /*dynamic=*/true)},
    {D, "1080", Spec(D, Tcp("", 1080))},
    {D, "127.0.0.1:1080", Spec(D, Tcp("127.0.0.1", 1080))},
    {D, "[::1]:1080", Spec(D, Tcp("::1", 1080))},
};

struct InvalidCase {
  ForwardKind kind;
  const char* spec;
  const char* error;  // a part of the message
};

// The refused examples at the top of src/config/forward_spec.cc, in the same order.
const std::vector<InvalidCase> kInvalid = {
    {L, "80x:localhost:80",
     "-L \"80x:localhost:80\": listen port \"80x\" is not a number "
     "(expected [bind:]port:host:hostport)"},
    {L, "0:localhost:80", "listen port 0 is out of range (1-65535; only -R may listen on 0)"},
    {L, "8000:localhost:70000", "target port 70000 is out of range"},
    {L, "8000:localhost", "too few parts (expected [bind:]port:host:hostport)"},
    {L, "8000", "missing the target"},
    {L, "1:2:3:4:5", "too many parts"},
    {L, "::1:8000:h:80", "IPv6 addresses go in brackets"},
    {L, "[::1:8000:h:80", "unbalanced '['"},
    {L, "::1]:8000:h:80", "unbalanced ']'"},
    {L, "8000::80", "target host is empty"},
    {L, "8000:local host:80", "whitespace"},
    {L, "8000:localhost:", "target port is empty"},
    {L, "", "empty specification"},
    {R, "/run/r.sock", "a socket listener needs a target"},
    {D, "/tmp/socks.sock", "-D \"/tmp/socks.sock\": takes a port, not a socket path"},
    {D, "1:2:3", "too many parts (expected [bind:]port)"},
};

TEST(ForwardSpec, ParsesEveryDocumentedForm) {
  for (const ValidCase& c : kValid) {
    auto got = ParseForwardSpec(c.kind, c.spec);
    ASSERT_TRUE(got.ok()) << c.spec << ": " << got.error().ToString();
    EXPECT_EQ(*got, c.want) << c.spec << " parsed as " << got->ToString();
  }
}

TEST(ForwardSpec, ToStringRoundTripsEveryDocumentedForm) {
  for (const ValidCase& c : kValid) {
    auto again = ParseForwardSpec(c.kind, c.want.ToString());
    ASSERT_TRUE(again.ok()) << c.want.ToString() << ": " << again.error().ToString();
    EXPECT_EQ(*again, c.want) << c.spec << " -> " << c.want.ToString();
  }
}

TEST(ForwardSpec, RefusesEveryDocumentedMistakeWithItsReason) {
  for (const InvalidCase& c : kInvalid) {
    auto got = ParseForwardSpec(c.kind, c.spec);
    ASSERT_FALSE(got.ok()) << c.spec << " parsed as " << got->ToString();
    EXPECT_EQ(got.error().step, "forward spec");
    EXPECT_NE(got.error().message.find(c.error), std::string::npos)
        << c.spec << ": " << got.error().message;
  }
}

TEST(ForwardSpec, ErrorsQuoteTheSpecAndTheFlag) {
  auto got = ParseForwardSpec(R, "8080:localhost:http");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message,
            "-R \"8080:localhost:http\": target port \"http\" is not a number "
            "(expected [bind:]port:host:hostport)");
}

TEST(ForwardSpec, TrimsSurroundingWhitespace) {
  auto got = ParseForwardSpec(L, "  8000:localhost:80 ");
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(*got, Spec(L, Tcp("", 8000), Tcp("localhost", 80)));
}

TEST(ForwardSpec, ToStringWritesTheCanonicalForm) {
  struct Case {
    ForwardKind kind;
    const char* spec;
    const char* text;
    const char* flag;
  };
  const std::vector<Case> cases = {
      {L, ":8000:localhost:80", "*:8000:localhost:80", "-L *:8000:localhost:80"},
      {L, "8000:[localhost]:0080", "8000:localhost:80", "-L 8000:localhost:80"},
      {L, "[::1]:8000:[fe80::1]:80", "[::1]:8000:[fe80::1]:80", "-L [::1]:8000:[fe80::1]:80"},
      {L, "[/tmp/a:b.sock]:/run/x", "[/tmp/a:b.sock]:/run/x", "-L [/tmp/a:b.sock]:/run/x"},
      {R, "1080", "1080", "-R 1080"},
      {R, ":1080", "*:1080", "-R *:1080"},
      {D, "[::1]:1080", "[::1]:1080", "-D [::1]:1080"},
  };
  for (const Case& c : cases) {
    auto got = ParseForwardSpec(c.kind, c.spec);
    ASSERT_TRUE(got.ok()) << c.spec << ": " << got.error().ToString();
    EXPECT_EQ(got->ToString(), c.text);
    EXPECT_EQ(got->ToFlagString(), c.flag);
  }
}

TEST(Endpoint, ToStringBracketsIpv6AndShowsPaths) {
  EXPECT_EQ(Tcp("localhost", 80).ToString(), "localhost:80");
  EXPECT_EQ(Tcp("::1", 80).ToString(), "[::1]:80");
  EXPECT_EQ(Tcp("", 8000).ToString(), ":8000");
  EXPECT_EQ(Tcp("*", 8000).ToString(), "*:8000");
  EXPECT_EQ(Unix("/run/app.sock").ToString(), "/run/app.sock");
  EXPECT_TRUE(Unix("/run/app.sock").is_unix());
  EXPECT_FALSE(Tcp("h", 1).is_unix());
}

struct ConfigCase {
  ForwardKind kind;
  const char* args;
  ForwardSpec want;
};

TEST(ForwardConfigArgs, ParsesTheTwoWordLines) {
  const std::vector<ConfigCase> cases = {
      {L, "8000 localhost:80", Spec(L, Tcp("", 8000), Tcp("localhost", 80))},
      {L, "127.0.0.1:8000 gpu:80", Spec(L, Tcp("127.0.0.1", 8000), Tcp("gpu", 80))},
      {L, "\"[::1]:8000\" \"[fe80::1]:80\"", Spec(L, Tcp("::1", 8000), Tcp("fe80::1", 80))},
      {L, "8000 /run/app.sock", Spec(L, Tcp("", 8000), Unix("/run/app.sock"))},
      {L, "/tmp/l.sock /run/r.sock", Spec(L, Unix("/tmp/l.sock"), Unix("/run/r.sock"))},
      {L, "8000 localhost:80 # the web UI", Spec(L, Tcp("", 8000), Tcp("localhost", 80))},
      {R, "8080 localhost:80", Spec(R, Tcp("", 8080), Tcp("localhost", 80))},
      {R, "1080", Spec(R, Tcp("", 1080), {}, true)},
      {R, "*:1080", Spec(R, Tcp("*", 1080), {}, true)},
      {D, "1080", Spec(D, Tcp("", 1080))},
      {D, "127.0.0.1:1080", Spec(D, Tcp("127.0.0.1", 1080))},
  };
  for (const ConfigCase& c : cases) {
    auto got = ParseForwardConfigArgs(c.kind, c.args);
    ASSERT_TRUE(got.ok()) << c.args << ": " << got.error().ToString();
    EXPECT_EQ(*got, c.want) << c.args;
  }
}

TEST(ForwardConfigArgs, RefusesMalformedLinesInConfigSyntax) {
  const std::vector<InvalidCase> cases = {
      {L, "8000:localhost:80", "missing the target (the second word)"},
      {L, "8000", "missing the target"},
      {L, "8000 localhost:80 extra", "too many words"},
      {L, "8000:localhost 80", "target \"80\" is not host:hostport or a socket path"},
      {L, "1:2:3 h:80", "listen side \"1:2:3\" is not [bind:]port"},
      {L, "\"8000 localhost:80", "unterminated quote"},
      {L, "", "missing arguments"},
      {L, "8000 localhost:80x",
       "LocalForward \"8000 localhost:80x\": target port \"80x\" is not a number "
       "(expected [bind:]port host:hostport)"},
      {R, "8080:localhost:80", "the target goes in a second word"},
      {D, "1080 x", "too many words"},
  };
  for (const InvalidCase& c : cases) {
    auto got = ParseForwardConfigArgs(c.kind, c.spec);
    ASSERT_FALSE(got.ok()) << c.spec << " parsed as " << got->ToString();
    EXPECT_NE(got.error().message.find(c.error), std::string::npos)
        << c.spec << ": " << got.error().message;
  }
}

TEST(SplitConfigWords, SplitsLikeReadconf) {
  struct Case {
    const char* line;
    std::vector<std::string> words;
  };
  const std::vector<Case> cases = {
      {"a b\tc", {"a", "b", "c"}},
      {"  \"two words\" x", {"two words", "x"}},
      {"'single quoted' y", {"single quoted", "y"}},
      {"a\\ b", {"a b"}},
      {"say \\\"hi\\\"", {"say", "\"hi\""}},
      {"a # comment", {"a"}},
      {"a#not-a-comment", {"a#not-a-comment"}},
      {"\"\"", {""}},
      {"", {}},
  };
  for (const Case& c : cases) {
    auto got = SplitConfigWords(c.line);
    ASSERT_TRUE(got.ok()) << c.line;
    EXPECT_EQ(*got, c.words) << c.line;
  }
  EXPECT_FALSE(SplitConfigWords("\"open").ok());
}

}  // namespace
}  // namespace tether::config
