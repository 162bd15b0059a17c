// End-to-end: requests no client should send, on a running daemon's HOST.sock, cost the
// daemon nothing: each gets an error naming the field, and the daemon keeps serving its
// forward and takes a new one afterwards.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e/tether_fixture.h"
#include "net/socket.h"

namespace tether::testing {
namespace {

using Json = nlohmann::json;
using ControlRobustnessTest = TetherTest;

// One request line on `fd`, its reply line.
Json Ask(int fd, const std::string& line) {
  Status sent = SendAll(fd, line + "\n");
  EXPECT_TRUE(sent.ok()) << sent.error().ToString();
  auto reply = ReceiveUntil(fd, "\n", std::chrono::seconds(5));
  EXPECT_TRUE(reply.ok()) << "no reply to " << line.substr(0, 80);
  if (!reply.ok()) return Json();
  return Json::parse(*reply, nullptr, false);
}

TEST_F(ControlRobustnessTest, MalformedRequestsGetErrorsAndTheDaemonKeepsServing) {
  HttpServer http("served\n");
  const uint16_t local = UpWithForward(http.port());
  CommandResult before = Tether({"status", "--json"});
  ASSERT_TRUE(before.ok()) << before.Describe();
  const auto pid = Json::parse(before.out)["hosts"][0].value("pid", 0);
  ASSERT_GT(pid, 0);

  auto fd = net::ConnectUnix(StatePath("testhost.sock"));
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"cmd":"forward","kind":1})", "\"kind\" must be a string"},
      {R"({"cmd":"proxy","port":"x"})", "\"port\" must be an integer in 1..65535"},
      {R"({"cmd":"proxy","port":4294967297})", "\"port\" must be an integer"},
      {R"({"cmd":"proxy","open":"yes"})", "\"open\" must be true or false"},
      {R"({"cmd":"proxy","upstream":[]})", "\"upstream\" must be a string"},
      {R"({"cmd":"forward","kind":"local","spec":8000})", "\"spec\" must be a string"},
      {R"({"cmd":"forward","kind":"local"})", "\"spec\" is missing"},
      {R"({"cmd":"cancel","kind":null,"spec":"1"})", "\"kind\" must be a string"},
      {R"({"cmd":"cancel","spec":{}})", "\"spec\" must be a string"},
      {R"({"cmd":"forward","kind":"local","spec":")" + std::string(10000, '9') + "\"}",
       "\"spec\" is 10000 bytes long"},
      {R"([1,2,3])", "not a JSON object"},
      {"{\"cmd\":\"status\",\"x\":\"\xff\xfe\"}", "not valid JSON"},
      {R"({"cmd":5})", "\"cmd\""},
  };
  for (const auto& [line, error] : bad) {
    Json reply = Ask(fd->get(), line);
    ASSERT_TRUE(reply.is_object()) << line.substr(0, 80);
    EXPECT_EQ(reply.value("ok", true), false) << reply.dump();
    EXPECT_NE(reply.value("error", "").find(error), std::string::npos) << reply.dump();
  }
  // The same connection still answers.
  EXPECT_EQ(Ask(fd->get(), R"({"cmd":"ping"})").value("pong", false), true);
  // A line over the limit: refused, and that connection closed.
  Json too_long = Ask(fd->get(), std::string(100 * 1024, 'x'));
  EXPECT_NE(too_long.value("error", "").find("too long"), std::string::npos) << too_long.dump();

  // The same daemon, still serving the forward it had...
  CommandResult after = Tether({"status", "--json"});
  ASSERT_TRUE(after.ok()) << after.Describe();
  EXPECT_EQ(Json::parse(after.out)["hosts"][0].value("pid", 0), pid);
  auto response = HttpGet(local, "/");
  ASSERT_TRUE(response.ok()) << response.error().ToString();
  EXPECT_EQ(response->body, "served\n");
  // ...and taking a new one.
  const uint16_t second = FreeTcpPort();
  auto fd2 = net::ConnectUnix(StatePath("testhost.sock"));
  ASSERT_TRUE(fd2.ok());
  Json added =
      Ask(fd2->get(),
          Json{{"cmd", "forward"},
               {"kind", "local"},
               {"spec", std::to_string(second) + ":127.0.0.1:" + std::to_string(http.port())}}
              .dump());
  ASSERT_EQ(added.value("ok", false), true) << added.dump();
  auto through_second = HttpGet(second, "/");
  ASSERT_TRUE(through_second.ok()) << through_second.error().ToString();
  EXPECT_EQ(through_second->body, "served\n");
}

}  // namespace
}  // namespace tether::testing
