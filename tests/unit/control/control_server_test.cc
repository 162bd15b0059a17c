#include "control/control_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/event_loop.h"
#include "net/socket.h"
#include "test_support/other_uid.h"

namespace tether::control {
namespace {

using namespace std::chrono_literals;

// Handlers for every shape of reply the header describes.
void RegisterTestHandlers(ControlServer& server) {
  server.Register("ping", [](const Json&) -> Result<Json> { return Json{{"pong", true}}; });
  server.Register("echo", [](const Json& request) -> Result<Json> {
    return Json{{"n", request.value("n", -1)}};
  });
  server.Register("busy", [](const Json&) -> Result<Json> {
    return MakeError("control", "the daemon is busy", "try again in a second");
  });
  server.Register("missing", [](const Json&) -> Result<Json> {
    return MakeError("control", "no such forward");
  });
  server.Register("count", [](const Json&) -> Result<Json> { return Json(42); });
  server.Register("list", [](const Json&) -> Result<Json> { return Json::array({1, 2}); });
  server.Register("nothing", [](const Json&) -> Result<Json> { return Json(); });
  server.Register("claims-failure", [](const Json&) -> Result<Json> {
    return Json{{"ok", false}, {"x", 1}};
  });
  // A handler with a bug: nlohmann throws type_error for a field of another type.
  server.Register("throws", [](const Json& request) -> Result<Json> {
    return Json{{"n", request.value("n", 0)}};
  });
}

// A string literal's bytes, NULs included.
template <size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// HandleLine needs no socket: the server gets no listener and the loop never runs.
class HandleLineTest : public ::testing::Test {
 protected:
  HandleLineTest() : server_(loop_, UniqueFd()) { RegisterTestHandlers(server_); }

  net::EventLoop loop_;
  ControlServer server_;
};

struct RefusedCase {
  const char* name;
  std::string line;
  const char* error_contains;
};

TEST_F(HandleLineTest, RefusesMalformedRequestsWithAnError) {
  const std::vector<RefusedCase> cases = {
      {"empty line", "", "not valid JSON"},
      {"not JSON", "hello", "not valid JSON"},
      {"truncated JSON", R"({"cmd":)", "not valid JSON"},
      {"trailing garbage", R"({"cmd":"ping"} x)", "not valid JSON"},
      {"JSON array", R"(["ping"])", "not a JSON object"},
      {"number", "42", "not a JSON object"},
      {"string", R"("ping")", "not a JSON object"},
      {"null", "null", "not a JSON object"},
      {"object without cmd", "{}", "\"cmd\""},
      {"cmd under another name", R"({"command":"ping"})", "\"cmd\""},
      {"cmd is a number", R"({"cmd":1})", "\"cmd\""},
      {"cmd is null", R"({"cmd":null})", "\"cmd\""},
      {"cmd is an array", R"({"cmd":["ping"]})", "\"cmd\""},
      {"unknown cmd", R"({"cmd":"reboot"})", "unknown cmd \"reboot\""},
      {"cmd is case sensitive", R"({"cmd":"PING"})", "unknown cmd \"PING\""},
  };
  for (const RefusedCase& c : cases) {
    const Json reply = server_.HandleLine(c.line);
    ASSERT_TRUE(reply.is_object()) << c.name;
    EXPECT_EQ(reply.value("ok", true), false) << c.name << ": " << reply.dump();
    ASSERT_TRUE(reply.contains("error") && reply["error"].is_string())
        << c.name << ": " << reply.dump();
    EXPECT_NE(reply["error"].get<std::string>().find(c.error_contains), std::string::npos)
        << c.name << ": " << reply.dump();
    EXPECT_FALSE(reply.contains("hint")) << c.name << ": " << reply.dump();
  }
}

struct AnsweredCase {
  const char* name;
  std::string line;
  Json want;
};

TEST_F(HandleLineTest, TurnsWhatTheHandlerReturnsIntoTheReply) {
  const std::vector<AnsweredCase> cases = {
      {"object", R"({"cmd":"ping"})", Json{{"ok", true}, {"pong", true}}},
      {"object, request has more fields", R"({"cmd":"ping","verbose":true})",
       Json{{"ok", true}, {"pong", true}}},
      {"whitespace around the request", "  {\"cmd\" : \"ping\"}\t",
       Json{{"ok", true}, {"pong", true}}},
      {"handler sees the request", R"({"cmd":"echo","n":7})", Json{{"ok", true}, {"n", 7}}},
      {"error with hint", R"({"cmd":"busy"})",
       Json{{"ok", false}, {"error", "the daemon is busy"}, {"hint", "try again in a second"}}},
      {"error without hint", R"({"cmd":"missing"})",
       Json{{"ok", false}, {"error", "no such forward"}}},
      {"number", R"({"cmd":"count"})", Json{{"ok", true}, {"result", 42}}},
      {"array", R"({"cmd":"list"})", Json{{"ok", true}, {"result", Json::array({1, 2})}}},
      {"null", R"({"cmd":"nothing"})", Json{{"ok", true}, {"result", nullptr}}},
      {"ok is added, not taken from the handler", R"({"cmd":"claims-failure"})",
       Json{{"ok", true}, {"x", 1}}},
  };
  for (const AnsweredCase& c : cases) {
    EXPECT_EQ(server_.HandleLine(c.line), c.want) << c.name;
  }
}

TEST_F(HandleLineTest, AnswersAnErrorWhenAHandlerThrowsAndCarriesOn) {
  Json reply;
  ASSERT_NO_THROW(reply = server_.HandleLine(R"({"cmd":"throws","n":"x"})"));
  EXPECT_EQ(reply.value("ok", true), false) << reply.dump();
  EXPECT_NE(reply.value("error", "").find("internal error in \"throws\""), std::string::npos)
      << reply.dump();
  EXPECT_FALSE(reply.value("hint", "").empty()) << reply.dump();
  EXPECT_EQ(server_.HandleLine(R"({"cmd":"throws","n":2})"), (Json{{"ok", true}, {"n", 2}}));
}

TEST_F(HandleLineTest, NeverThrowsOnInvalidUtf8OrNulBytes) {
  const std::vector<std::string> lines = {
      "\xff\xfe",
      "{\"cmd\":\"\xff\"}",
      "{\"cmd\":\"pi\xc3\"}",        // truncated two-byte sequence
      "{\"cmd\":\"\xc0\xaf\"}",      // overlong '/'
      "{\"cmd\":\"\xed\xa0\x80\"}",  // a surrogate encoded as UTF-8
      "{\"cmd\":\"\\ud800\"}",       // a lone surrogate escape
      "{\"cmd\":\"ping\",\"x\":\"\xf8\x88\x80\x80\x80\"}",
      Bytes("\0"),
      Bytes("{\"cmd\":\"pi\0ng\"}"),
      Bytes("{\"cmd\":\"ping\"}\0{\"cmd\":\"busy\"}"),
      Bytes("{\"cmd\":\"ping\",\"pad\":\"\0\"}"),
      "{\"cmd\":\"\\u0000\"}",  // a NUL that is valid JSON
  };
  for (const std::string& line : lines) {
    Json reply;
    ASSERT_NO_THROW(reply = server_.HandleLine(line)) << testing::PrintToString(line);
    ASSERT_TRUE(reply.is_object()) << testing::PrintToString(line);
    EXPECT_TRUE(reply.contains("ok") && reply["ok"].is_boolean())
        << testing::PrintToString(line) << " -> " << reply.dump();
    EXPECT_NO_THROW((void)reply.dump()) << testing::PrintToString(line);
  }
}

TEST_F(HandleLineTest, RefusesInvalidUtf8AsNotJson) {
  for (const std::string line : {"{\"cmd\":\"\xff\"}", "{\"cmd\":\"pi\xc3\"}", "\xff\xfe"}) {
    const Json reply = server_.HandleLine(line);
    EXPECT_EQ(reply.value("ok", true), false) << testing::PrintToString(line);
    EXPECT_EQ(reply.value("error", ""), "request is not valid JSON")
        << testing::PrintToString(line);
  }
}

// Everything after a NUL is part of the line too: a line that is not JSON as a whole is
// refused, whatever its first bytes say.
TEST_F(HandleLineTest, RefusesALineWithMoreAfterANulByte) {
  for (const std::string& line :
       {Bytes("{\"cmd\":\"ping\"}\0garbage"), Bytes("{\"cmd\":\"ping\"}\0")}) {
    const Json reply = server_.HandleLine(line);
    EXPECT_EQ(reply.value("ok", true), false)
        << testing::PrintToString(line) << " -> " << reply.dump();
  }
}

// A client on the other end of a real control socket. The loop is driven from the test
// thread, so the client is non-blocking and does a little each round.
class SocketClient {
 public:
  explicit SocketClient(UniqueFd fd) : fd_(std::move(fd)) {}

  void Queue(const std::string& bytes) { out_ += bytes; }

  // Writes what it can, reads what there is.
  void Step() {
    if (!out_.empty() && !eof_ && read_errno_ == 0) {
      ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n > 0) out_.erase(0, static_cast<size_t>(n));
      if (n < 0 && errno != EAGAIN && errno != EINTR) write_errno_ = errno;
    }
    for (int i = 0; i < 64 && !eof_; ++i) {
      char buf[4096];
      ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) eof_ = true;
      if (n < 0 && errno != EAGAIN && errno != EINTR) read_errno_ = errno;
      break;
    }
  }

  std::vector<std::string> Lines() const {
    std::vector<std::string> lines;
    size_t start = 0;
    for (size_t nl; (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1) {
      lines.push_back(in_.substr(start, nl - start));
    }
    return lines;
  }

  bool eof() const { return eof_; }
  int read_errno() const { return read_errno_; }
  int write_errno() const { return write_errno_; }
  size_t unsent() const { return out_.size(); }

 private:
  UniqueFd fd_;
  std::string out_;
  std::string in_;
  bool eof_ = false;
  int read_errno_ = 0;
  int write_errno_ = 0;
};

class ControlSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-control-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/gpu.sock";
    auto listener = net::ListenUnix(path_);
    ASSERT_TRUE(listener.ok()) << listener.error().ToString();
    server_ = std::make_unique<ControlServer>(loop_, std::move(*listener));
    RegisterTestHandlers(*server_);
  }

  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<SocketClient> Connect() {
    auto fd = net::ConnectUnix(path_);
    EXPECT_TRUE(fd.ok()) << fd.error().ToString();
    if (!fd.ok()) return nullptr;
    EXPECT_TRUE(net::SetNonBlocking(fd->get()).ok());
    return std::make_unique<SocketClient>(std::move(*fd));
  }

  // Runs the loop in 10 ms rounds, letting the client work after each, until `done`
  // or 5 s have passed. False on timeout.
  bool Drive(SocketClient& client, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (int round = 0; round < 2000 && std::chrono::steady_clock::now() < deadline; ++round) {
      Status s = loop_.RunOnce(10ms);
      EXPECT_TRUE(s.ok()) << s.error().ToString();
      client.Step();
      if (done()) return true;
    }
    return false;
  }

  std::string dir_;
  std::string path_;
  net::EventLoop loop_;
  std::unique_ptr<ControlServer> server_;
};

TEST_F(ControlSocketTest, AnswersTwoRequestsOnOneConnectionInOrder) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  client->Queue("{\"cmd\":\"ping\"}\n{\"cmd\":\"echo\",\"n\":2}\n");

  ASSERT_TRUE(Drive(*client, [&] { return client->Lines().size() >= 2; }))
      << "replies so far: " << testing::PrintToString(client->Lines());

  const std::vector<std::string> lines = client->Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Json::parse(lines[0]), (Json{{"ok", true}, {"pong", true}}));
  EXPECT_EQ(Json::parse(lines[1]), (Json{{"ok", true}, {"n", 2}}));
  EXPECT_FALSE(client->eof());
  EXPECT_EQ(client->read_errno(), 0);
}

TEST_F(ControlSocketTest, KeepsTheConnectionAfterAMalformedLine) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  client->Queue("this is not json\n");
  client->Queue("{\"cmd\":\"ping\"}\n");

  ASSERT_TRUE(Drive(*client, [&] { return client->Lines().size() >= 2 || client->eof(); }))
      << "replies so far: " << testing::PrintToString(client->Lines());

  const std::vector<std::string> lines = client->Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Json::parse(lines[0]).value("ok", true), false);
  EXPECT_EQ(Json::parse(lines[1]), (Json{{"ok", true}, {"pong", true}}));
  EXPECT_FALSE(client->eof());
}

TEST_F(ControlSocketTest, RefusesAnOverlongLineThenClosesWithoutReset) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  client->Queue(std::string(kMaxLineBytes + 16 * 1024, 'x') + "\n");

  ASSERT_TRUE(Drive(*client, [&] { return client->eof() || client->read_errno() != 0; }))
      << "replies so far: " << testing::PrintToString(client->Lines());

  EXPECT_TRUE(client->eof());
  EXPECT_EQ(client->read_errno(), 0) << std::strerror(client->read_errno());
  EXPECT_EQ(client->write_errno(), 0) << std::strerror(client->write_errno());
  const std::vector<std::string> lines = client->Lines();
  ASSERT_EQ(lines.size(), 1u);
  const Json reply = Json::parse(lines[0]);
  EXPECT_EQ(reply.value("ok", true), false);
  EXPECT_NE(reply.value("error", "").find("too long"), std::string::npos) << lines[0];
}

// The limit must not depend on how the bytes happen to be cut into reads: here the
// whole line, newline included, is queued before the server reads any of it.
TEST_F(ControlSocketTest, RefusesAValidRequestJustOverTheLimit) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  const std::string head = R"({"cmd":"ping","pad":")";
  const std::string tail = "\"}";
  const std::string line =
      head + std::string(kMaxLineBytes + 10 - head.size() - tail.size(), 'x') + tail;
  ASSERT_EQ(line.size(), kMaxLineBytes + 10);
  client->Queue(line + "\n");
  client->Step();
  ASSERT_EQ(client->unsent(), 0u) << "the socket buffer took only part of the line";

  ASSERT_TRUE(Drive(*client, [&] { return !client->Lines().empty() || client->eof(); }));

  const std::vector<std::string> lines = client->Lines();
  ASSERT_EQ(lines.size(), 1u);
  const Json reply = Json::parse(lines[0]);
  EXPECT_EQ(reply.value("ok", true), false) << lines[0];
  EXPECT_NE(reply.value("error", "").find("too long"), std::string::npos) << lines[0];
}

// Whatever the socket file's mode says (a umask, a shared state directory), another
// account's process is refused at accept, with a reason, and the owner is served.
TEST_F(ControlSocketTest, RefusesAPeerOfAnotherUidAndKeepsServingItsOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);
  auto outcome =
      test_support::ConnectAsUid(path_, test_support::kNobodyUid, "{\"cmd\":\"ping\"}\n", [&] {
        Status s = loop_.RunOnce(10ms);
        EXPECT_TRUE(s.ok());
      });
  ASSERT_TRUE(outcome.ran);
  ASSERT_TRUE(outcome.connected) << "the socket file should let it connect";
  EXPECT_TRUE(outcome.eof) << "the server should close the connection";
  const Json refusal = Json::parse(outcome.received, nullptr, false);
  EXPECT_EQ(refusal.value("ok", true), false) << outcome.received;
  EXPECT_NE(refusal.value("error", "").find("permission denied"), std::string::npos)
      << outcome.received;
  EXPECT_EQ(outcome.received.find("pong"), std::string::npos) << "it was served";

  auto client = Connect();
  ASSERT_NE(client, nullptr);
  client->Queue("{\"cmd\":\"ping\"}\n");
  ASSERT_TRUE(Drive(*client, [&] { return !client->Lines().empty(); }));
  EXPECT_EQ(Json::parse(client->Lines()[0]), (Json{{"ok", true}, {"pong", true}}));
}

// Commands answered later (a login waits for the server's next prompt).
class LaterReplyTest : public ControlSocketTest {
 protected:
  void SetUp() override {
    ControlSocketTest::SetUp();
    server_->RegisterLater(
        "wait", [this](const Json&, LaterReply reply) { owed_.push_back(std::move(reply)); });
    server_->RegisterLater("now", [](const Json& request, LaterReply reply) {
      reply.Send(Json{{"n", request.value("n", 0)}});
    });
    server_->OnClientGone([this](uint64_t client) { gone_.push_back(client); });
  }
  std::vector<LaterReply> owed_;
  std::vector<uint64_t> gone_;
};

TEST_F(LaterReplyTest, ALaterReplyComesInOrderAndTheLinesAfterItWait) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  client->Queue("{\"cmd\":\"wait\"}\n{\"cmd\":\"ping\"}\n");
  ASSERT_TRUE(Drive(*client, [&] { return !owed_.empty(); }));
  // Nothing yet, not even the ping's reply: replies go in request order.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(loop_.RunOnce(5ms).ok());
    client->Step();
  }
  EXPECT_TRUE(client->Lines().empty()) << testing::PrintToString(client->Lines());
  ASSERT_EQ(owed_.size(), 1u);
  EXPECT_NE(owed_[0].client(), 0u);
  owed_[0].Send(Json{{"event", "prompt"}});
  owed_[0].Send(Json{{"event", "twice"}});  // at most once
  ASSERT_TRUE(Drive(*client, [&] { return client->Lines().size() >= 2; }))
      << testing::PrintToString(client->Lines());
  const auto lines = client->Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(Json::parse(lines[0]), (Json{{"ok", true}, {"event", "prompt"}}));
  EXPECT_EQ(Json::parse(lines[1]), (Json{{"ok", true}, {"pong", true}}));
  EXPECT_TRUE(gone_.empty());
}

TEST_F(LaterReplyTest, AReplyGivenInTheCallIsAnsweredAtOnceAlsoWithoutAConnection) {
  EXPECT_EQ(server_->HandleLine(R"({"cmd":"now","n":3})"), (Json{{"ok", true}, {"n", 3}}));
  Json later = server_->HandleLine(R"({"cmd":"wait"})");
  EXPECT_EQ(later.value("ok", true), false) << later.dump();
  ASSERT_EQ(owed_.size(), 1u);
  EXPECT_EQ(owed_[0].client(), 0u);
  owed_[0].Send(Json::object());  // to nobody: nothing happens
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  client->Queue("{\"cmd\":\"now\",\"n\":1}\n{\"cmd\":\"now\",\"n\":2}\n");
  ASSERT_TRUE(Drive(*client, [&] { return client->Lines().size() >= 2; }));
  EXPECT_EQ(Json::parse(client->Lines()[1]), (Json{{"ok", true}, {"n", 2}}));
}

TEST_F(LaterReplyTest, AClientThatGoesAwayIsToldOfAndItsReplyGoesNowhere) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  client->Queue("{\"cmd\":\"wait\"}\n");
  ASSERT_TRUE(Drive(*client, [&] { return !owed_.empty(); }));
  const uint64_t id = owed_[0].client();
  client.reset();  // closes
  auto other = Connect();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(Drive(*other, [&] { return !gone_.empty(); }));
  EXPECT_EQ(gone_, std::vector<uint64_t>{id});
  owed_[0].Send(Json::object());  // the client is gone: dropped
  other->Queue("{\"cmd\":\"ping\"}\n");
  ASSERT_TRUE(Drive(*other, [&] { return !other->Lines().empty(); }));
  EXPECT_EQ(Json::parse(other->Lines()[0]), (Json{{"ok", true}, {"pong", true}}));
}

TEST_F(LaterReplyTest, AClientSendingWithoutEndWhileOwedIsDropped) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  client->Queue("{\"cmd\":\"wait\"}\n");
  ASSERT_TRUE(Drive(*client, [&] { return !owed_.empty(); }));
  client->Queue(std::string(kMaxLineBytes + 10, 'x'));
  ASSERT_TRUE(Drive(*client, [&] { return client->eof() || client->read_errno() != 0; }));
  EXPECT_EQ(gone_.size(), 1u);
}

TEST_F(LaterReplyTest, AReplyAfterTheServerIsGoneDoesNothing) {
  (void)server_->HandleLine(R"({"cmd":"wait"})");
  ASSERT_EQ(owed_.size(), 1u);
  LaterReply reply = std::move(owed_[0]);
  owed_.clear();
  server_.reset();
  reply.Send(Json::object());
  EXPECT_TRUE(reply.sent());
}

}  // namespace
}  // namespace tether::control
