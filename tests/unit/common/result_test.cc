#include "common/result.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace tether {
namespace {

struct ToStringCase {
  const char* name;
  Error error;
  const char* want;
};

TEST(ErrorToString, JoinsStepMessageAndHintAsTheHeaderSays) {
  const std::vector<ToStringCase> cases = {
      {"step and message", MakeError("connect", "cannot connect to gpu:22"),
       "connect: cannot connect to gpu:22"},
      {"step, message and hint", MakeError("connect", "refused", "is sshd running?"),
       "connect: refused\n  is sshd running?"},
      {"message only", MakeError("", "something broke"), "something broke"},
      {"message and hint, no step", MakeError("", "something broke", "try again"),
       "something broke\n  try again"},
      {"errno does not show", MakeError("auth", "denied", "", EACCES), "auth: denied"},
  };
  for (const ToStringCase& c : cases) {
    EXPECT_EQ(c.error.ToString(), c.want) << c.name;
  }
}

TEST(MakeError, KeepsEveryField) {
  const Error e = MakeError("host key", "changed", "check known_hosts", EPERM);
  EXPECT_EQ(e.step, "host key");
  EXPECT_EQ(e.message, "changed");
  EXPECT_EQ(e.hint, "check known_hosts");
  EXPECT_EQ(e.sys_errno, EPERM);
}

TEST(MakeError, WithAStepInWordsHasNoCodePolicyActsOn) {
  EXPECT_EQ(MakeError("auth", "looks like one").code, ErrorCode::kOther);
  EXPECT_EQ(ErrnoError("listen", "bind", EACCES).code, ErrorCode::kOther);
}

TEST(MakeError, WithACodeNamesItsStep) {
  struct Case {
    ErrorCode code;
    const char* step;
  };
  const Case cases[] = {
      {ErrorCode::kResolve, "resolve"},     {ErrorCode::kConnect, "connect"},
      {ErrorCode::kHandshake, "handshake"}, {ErrorCode::kHostKey, "host key"},
      {ErrorCode::kAuth, "auth"},           {ErrorCode::kListen, "listen"},
  };
  for (const Case& c : cases) {
    const Error e = MakeError(c.code, "failed", "do this", EPERM);
    EXPECT_EQ(e.code, c.code) << c.step;
    EXPECT_EQ(e.step, c.step);
    EXPECT_EQ(e.ToString(), std::string(c.step) + ": failed\n  do this");
    EXPECT_EQ(e.sys_errno, EPERM);
    const Error sys = ErrnoError(c.code, "call", ENOENT);
    EXPECT_EQ(sys.code, c.code) << c.step;
    EXPECT_EQ(sys.ToString(), std::string(c.step) + ": call: " + std::strerror(ENOENT));
  }
  EXPECT_STREQ(StepOf(ErrorCode::kOther), "");
}

TEST(ErrnoError, AppendsStrerrorAndKeepsErrno) {
  const std::string strerror_text = std::strerror(ENOENT);
  ASSERT_FALSE(strerror_text.empty());

  const Error e = ErrnoError("listen", "bind /tmp/x.sock", ENOENT);

  EXPECT_EQ(e.step, "listen");
  EXPECT_EQ(e.message, "bind /tmp/x.sock: " + strerror_text);
  EXPECT_EQ(e.hint, "");
  EXPECT_EQ(e.sys_errno, ENOENT);
  EXPECT_EQ(e.ToString(), "listen: bind /tmp/x.sock: " + strerror_text);
}

TEST(ErrnoError, NamesTheErrnoItWasGiven) {
  for (int err : {ENOENT, EACCES, ECONNREFUSED, EADDRINUSE}) {
    const Error e = ErrnoError("step", "call", err);
    EXPECT_EQ(e.message, std::string("call: ") + std::strerror(err)) << err;
    EXPECT_EQ(e.sys_errno, err);
  }
}

Result<int> ParsePort(int port) {
  if (port <= 0 || port > 65535) return MakeError("config", "bad port", "use 1-65535");
  return port;
}

TEST(Result, HoldsAValue) {
  Result<int> r = ParsePort(2222);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 2222);
  EXPECT_EQ(*r, 2222);
}

TEST(Result, HoldsAnError) {
  Result<int> r = ParsePort(0);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(static_cast<bool>(r));
  EXPECT_EQ(r.error().step, "config");
  EXPECT_EQ(r.error().message, "bad port");
  EXPECT_EQ(r.error().hint, "use 1-65535");
}

TEST(Result, GivesAccessToTheValueThroughArrowAndAllowsChangingIt) {
  Result<std::string> r = std::string("gpu");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 3u);
  r->append("-node");
  EXPECT_EQ(*r, "gpu-node");
  const Result<std::string>& cr = r;
  EXPECT_EQ(cr.value(), "gpu-node");
  EXPECT_EQ(cr->front(), 'g');
}

TEST(Result, MovesAMoveOnlyValueOut) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

TEST(Result, TakesTheErrorOut) {
  Result<std::vector<int>> r = MakeError("resolve", "no such host", "check DNS", 0);
  ASSERT_FALSE(r.ok());
  Error e = r.take_error();
  EXPECT_EQ(e.step, "resolve");
  EXPECT_EQ(e.message, "no such host");
  EXPECT_EQ(e.hint, "check DNS");
}

TEST(Status, IsOkByDefaultAndFromOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(static_cast<bool>(s));
  Status t = Status::Ok();
  EXPECT_TRUE(t.ok());
}

TEST(Status, CarriesAnError) {
  Status s = ErrnoError("state", "cannot open /x", EACCES);
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(static_cast<bool>(s));
  EXPECT_EQ(s.error().step, "state");
  EXPECT_EQ(s.error().sys_errno, EACCES);
  Error e = s.take_error();
  EXPECT_EQ(e.message, std::string("cannot open /x: ") + std::strerror(EACCES));
}

}  // namespace
}  // namespace tether
