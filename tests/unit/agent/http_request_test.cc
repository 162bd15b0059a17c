// The request head parser by table: what it accepts, what it refuses and with which status,
// and that it never says "done" or "error" before it could know.
#include "agent/http_request.h"

#include <gtest/gtest.h>

#include <string>

namespace tether::agent {
namespace {

constexpr size_t kMaxHead = 16 * 1024;

struct Refused {
  std::string input;
  int status;
};

class RefusedHead : public ::testing::TestWithParam<Refused> {};

TEST_P(RefusedHead, IsAnErrorWithItsStatus) {
  const Refused& r = GetParam();
  HeadParse p = ParseRequestHead(r.input, kMaxHead);
  ASSERT_EQ(p.state, ParseState::kError) << ::testing::PrintToString(r.input);
  EXPECT_EQ(p.status, r.status) << ::testing::PrintToString(r.input);
  EXPECT_FALSE(p.reason.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, RefusedHead,
    ::testing::Values(
        Refused{"GARBAGE\r\n\r\n", 400}, Refused{"GET\r\n\r\n", 400},
        Refused{"GET /status\r\n\r\n", 400}, Refused{"GET /status HTTP/9.9\r\n\r\n", 400},
        Refused{"GET /status HTTP/1.1 extra\r\n\r\n", 400},
        Refused{"GET  /status HTTP/1.1\r\n\r\n", 400}, Refused{"GET status HTTP/1.1\r\n\r\n", 400},
        Refused{"GET http://x/status HTTP/1.1\r\n\r\n", 400},
        Refused{"G(T /status HTTP/1.1\r\n\r\n", 400},
        Refused{"GET /sta\x01tus HTTP/1.1\r\n\r\n", 400},
        Refused{"GET /status HTTP/1.1\r\nNo colon here\r\n\r\n", 400},
        Refused{"GET /status HTTP/1.1\r\nName : v\r\n\r\n", 400},
        Refused{"GET /status HTTP/1.1\r\n: empty name\r\n\r\n", 400},
        Refused{"GET /status HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},
        Refused{"GET /status HTTP/1.1\r\nA: b\x7f\r\n\r\n", 400},
        Refused{std::string("GET /status HTTP/1.1\r\nA: b\0c\r\n\r\n", 32), 400},
        // Someone speaking TLS to a plain-HTTP port: the start of a ClientHello.
        Refused{std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15), 400},
        // Known to be wrong before the line ends: no need to wait for more.
        Refused{std::string("\x16\x03\x01\x02\x00", 5), 400},
        Refused{"GET /" + std::string(kMaxRequestLineBytes, 'a') + " HTTP/1.1\r\n\r\n", 414},
        Refused{"GET /" + std::string(kMaxRequestLineBytes, 'a'), 414},
        Refused{"GET / HTTP/1.1\r\nX: " + std::string(kMaxHeaderLineBytes, 'b') + "\r\n\r\n", 400},
        Refused{"GET / HTTP/1.1\r\nX: " + std::string(kMaxHeaderLineBytes, 'b'), 400}));

TEST(HttpRequestHead, ParsesARequestWithCrlfOrBareLf) {
  for (const std::string& input :
       {std::string("GET /status?x=1 HTTP/1.1\r\nAuthorization: Bearer  abc \r\nHost: h\r\n\r\n"),
        std::string("GET /status?x=1 HTTP/1.1\nAuthorization: Bearer  abc \nHost: h\n\n")}) {
    HeadParse p = ParseRequestHead(input + "NEXT", kMaxHead);
    ASSERT_EQ(p.state, ParseState::kDone) << input;
    EXPECT_EQ(p.head_bytes, input.size());
    EXPECT_EQ(p.request.method, "GET");
    EXPECT_EQ(p.request.path, "/status");
    EXPECT_EQ(p.request.query, "x=1");
    EXPECT_EQ(p.request.minor_version, 1);
    EXPECT_EQ(p.request.HeaderCount("authorization"), 1u);
    EXPECT_EQ(p.request.Header("AUTHORIZATION").value_or(""), "Bearer  abc");
    EXPECT_FALSE(p.request.Header("Content-Length").has_value());
  }
}

TEST(HttpRequestHead, NeedsMoreUntilTheEmptyLine) {
  const std::string full = "POST /extend?hours=2 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(ParseRequestHead(full.substr(0, n), kMaxHead).state, ParseState::kNeedMore) << n;
  }
  EXPECT_EQ(ParseRequestHead(full, kMaxHead).state, ParseState::kDone);
}

TEST(HttpRequestHead, AHeadOverItsBudgetIsRefused) {
  std::string head = "GET /status HTTP/1.1\r\n";
  while (head.size() < 2000) head += "X-Pad: vvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n";
  EXPECT_EQ(ParseRequestHead(head + "\r\n", 4096).state, ParseState::kDone);
  HeadParse p = ParseRequestHead(head + "\r\n", 1024);
  EXPECT_EQ(p.state, ParseState::kError);
  EXPECT_EQ(p.status, 400);
  // Still arriving, but already at the budget: no more will be read for it.
  p = ParseRequestHead(head, head.size());
  EXPECT_EQ(p.state, ParseState::kError);
  EXPECT_EQ(p.status, 400);
}

TEST(HttpRequestHead, SkipsEmptyLinesBeforeTheRequestLine) {
  HeadParse p = ParseRequestHead("\r\n\r\nGET /lease HTTP/1.0\r\n\r\n", kMaxHead);
  ASSERT_EQ(p.state, ParseState::kDone);
  EXPECT_EQ(p.request.path, "/lease");
  EXPECT_EQ(p.request.minor_version, 0);
}

TEST(HttpRequestHead, DecodesThePathAndQueryParameters) {
  HeadParse p = ParseRequestHead(
      "POST /ext%65nd?a=1&hours=0.5&hours=9&sp=a+b%20c&flag HTTP/1.1\r\n\r\n", kMaxHead);
  ASSERT_EQ(p.state, ParseState::kDone);
  EXPECT_EQ(p.request.path, "/extend");
  EXPECT_EQ(p.request.QueryParam("hours").value_or(""), "0.5");  // the first one
  EXPECT_EQ(p.request.QueryParam("sp").value_or(""), "a b c");
  EXPECT_EQ(p.request.QueryParam("flag").value_or("x"), "");
  EXPECT_FALSE(p.request.QueryParam("none").has_value());
  EXPECT_EQ(PercentDecode("%zz%4", false), "%zz%4");  // malformed escapes are kept
}

TEST(HttpRequestHead, KeepAliveFollowsTheVersionAndConnectionHeader) {
  auto keep = [](const std::string& head) {
    HeadParse p = ParseRequestHead(head + "\r\n", kMaxHead);
    EXPECT_EQ(p.state, ParseState::kDone) << head;
    return p.request.KeepAlive();
  };
  EXPECT_TRUE(keep("GET / HTTP/1.1\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nConnection: close\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.1\r\nConnection: TE, Close\r\n"));
  EXPECT_FALSE(keep("GET / HTTP/1.0\r\n"));
  EXPECT_TRUE(keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n"));
}

}  // namespace
}  // namespace tether::agent
