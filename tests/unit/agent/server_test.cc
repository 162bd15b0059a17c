// The real HTTP server, started in-process on a free loopback port (or a unix socket),
// talked to with a small client (http_client.h) and, for what a well-behaved client never
// sends, a raw socket.
#include "agent/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <fstream>
#include <mutex>
#include <thread>

#include "agent/api.h"
#include "agent/metrics.h"
#include "http_client.h"
#include "sample_status.h"
#include "test_util.h"

namespace tether::agent {
namespace {

using std::chrono::milliseconds;

const std::string kToken = "5f0e9d8c7b6a59483726150f4e3d2c1b0a99887766554433221100ffeeddccbb";

// Sends `request` on a fresh connection and returns the server's answer: one response
// (headers and Content-Length bytes of body), or with `until_close` everything until the
// server closes. Reads give up after 10 s.
std::string RawExchange(int port, const std::string& request, bool until_close = false) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close before taking it all
    sent += static_cast<size_t>(n);
  }
  std::string answer;
  char buf[4096];
  while (true) {
    if (!until_close) {
      size_t end = answer.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        size_t at = answer.find("Content-Length: ");
        if (at != std::string::npos && at < end) length = std::stoul(answer.substr(at + 16));
        if (answer.size() >= end + 4 + length) break;
      }
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return answer;
}

// A connection to the agent that sends `first` (maybe nothing) and then waits.
int Connect(int port, const std::string& first = "") {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  if (!first.empty()) {
    EXPECT_EQ(::send(fd, first.data(), first.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(first.size()));
  }
  return fd;
}

// Whether the server closed `fd` within `wait`.
bool ClosedWithin(int fd, milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
  char buf[256];
  return ::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0;
}

int StatusOf(const std::string& raw) {
  // "HTTP/1.1 400 Bad Request"
  if (raw.size() < 12 || raw.rfind("HTTP/1.", 0) != 0) return -1;
  return std::stoi(raw.substr(9, 3));
}

class AgentServerTest : public ::testing::Test {
 protected:
  void Start(LeaseConfig lease_config = {},
             std::chrono::seconds io_timeout = std::chrono::seconds(5),
             const std::function<void(ServerConfig&)>& tweak = nullptr) {
    lease_ = std::make_unique<LeaseKeeper>(lease_config, [](const std::string&) {});
    ServerConfig config;
    config.host = "127.0.0.1";
    config.port = 0;
    config.token = kToken;
    config.version = "0.1.0";
    config.socket_path = socket_path_;
    config.io_timeout = io_timeout;
    config.log = [this](const std::string& line) {
      std::lock_guard lock(log_mu_);
      log_.push_back(line);
    };
    if (tweak) tweak(config);
    server_ = std::make_unique<AgentServer>(
        config, [] { return testing::SampleStatus(); }, *lease_);
    auto port = server_->Bind();
    ASSERT_TRUE(port.ok()) << port.error().ToString();
    port_ = *port;
    thread_ = std::thread([this] { EXPECT_TRUE(server_->Serve().ok()); });
  }

  void TearDown() override {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  testing::TestClient Client() { return testing::TestClient(port_); }

  static testing::Headers Auth(const std::string& value) { return {{"Authorization", value}}; }
  static testing::Headers Good() { return Auth("Bearer " + kToken); }

  std::vector<std::string> Log() {
    std::lock_guard lock(log_mu_);
    return log_;
  }

  std::unique_ptr<LeaseKeeper> lease_;
  std::unique_ptr<AgentServer> server_;
  std::thread thread_;
  int port_ = 0;
  std::string socket_path_;  // set before Start: serve on this unix socket instead
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(AgentServerTest, EveryPathRefusesARequestWithoutTheToken) {
  Start();
  auto cli = Client();
  for (const char* path : {"/status", "/metrics", "/lease", "/nope", "/"}) {
    auto res = cli.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 401) << path;
    EXPECT_EQ(res->get_header_value("WWW-Authenticate"), "Bearer realm=\"tether-agent\"");
    auto body = Json::parse(res->body, nullptr, false);
    EXPECT_EQ(body["error"], "no bearer token") << res->body;
  }
  auto res = cli.Post("/extend", "{\"hours\": 2}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
}

TEST_F(AgentServerTest, WrongTokensAreRefused) {
  Start();
  auto cli = Client();
  std::string flipped = kToken;
  flipped[10] = flipped[10] == 'a' ? 'b' : 'a';
  const std::vector<std::string> headers = {"Bearer " + flipped,
                                            "Bearer " + kToken.substr(0, 63),
                                            "Bearer " + kToken + "0",
                                            "Bearer",
                                            "Bearer ",
                                            "Basic " + kToken,
                                            kToken,
                                            "Bearer wrong"};
  for (const std::string& header : headers) {
    auto res = cli.Get("/status", Auth(header));
    ASSERT_TRUE(res) << header;
    EXPECT_EQ(res->status, 401) << header;
    EXPECT_EQ(Json::parse(res->body, nullptr, false)["error"], "wrong token") << header;
  }
}

TEST_F(AgentServerTest, TwoAuthorizationHeadersAreAMalformedRequest) {
  Start();
  auto cli = Client();
  testing::Headers headers = {{"Authorization", "Bearer " + kToken},
                              {"Authorization", "Bearer other"}};
  auto res = cli.Get("/status", headers);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
}

TEST_F(AgentServerTest, TheRightTokenGetsTheStatus) {
  Start();
  auto cli = Client();
  for (const std::string& header :
       std::vector<std::string>{"Bearer " + kToken, "bearer  " + kToken}) {
    auto res = cli.Get("/status", Auth(header));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    Json j = Json::parse(res->body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << res->body;
    EXPECT_EQ(j["api"], kApiVersion);
    EXPECT_EQ(j["agent"]["version"], "0.1.0");
    EXPECT_EQ(j["hostname"], "gpu01");
    EXPECT_EQ(j["gpus"].size(), 2u);
    EXPECT_EQ(j["lease"]["enabled"], false);
  }
}

TEST_F(AgentServerTest, MetricsAreServedAsPrometheusText) {
  Start();
  auto res = Client().Get("/metrics", Good());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kMetricsContentType);
  EXPECT_EQ(res->body, RenderMetrics(testing::SampleStatus(), "0.1.0"));
}

TEST_F(AgentServerTest, UnknownPathsAndMethodsAreNotFoundOnceAuthenticated) {
  Start();
  auto cli = Client();
  auto res = cli.Get("/nope", Good());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Json::parse(res->body, nullptr, false)["error"], "not found");
  res = cli.Get("/extend", Good());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  res = cli.Post("/status", Good(), "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(AgentServerTest, WithoutALeaseExtendIsAConflict) {
  Start();
  auto cli = Client();
  auto lease = cli.Get("/lease", Good());
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->status, 200);
  EXPECT_EQ(Json::parse(lease->body, nullptr, false)["enabled"], false);
  auto res = cli.Post("/extend", Good(), "{\"hours\": 2}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 409);
  EXPECT_NE(
      Json::parse(res->body, nullptr, false)["hint"].get<std::string>().find("--lease-command"),
      std::string::npos);
}

TEST_F(AgentServerTest, ExtendArmsAndLengthensTheLease) {
  Start(LeaseConfig{"true", std::nullopt, milliseconds(1000)});
  auto cli = Client();
  auto before = cli.Get("/lease", Good());
  ASSERT_TRUE(before);
  Json b = Json::parse(before->body, nullptr, false);
  EXPECT_EQ(b["enabled"], true);
  EXPECT_EQ(b["armed"], false);
  EXPECT_TRUE(b["remaining_seconds"].is_null());

  auto res = cli.Post("/extend", Good(), "{\"hours\": 2}", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  Json j = Json::parse(res->body, nullptr, false);
  EXPECT_EQ(j["armed"], true);
  EXPECT_NEAR(j["remaining_seconds"].get<double>(), 7200, 5);
  EXPECT_TRUE(j["expires_at"].is_string());

  res = cli.Post("/extend?hours=0.5", Good(), "", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_NEAR(Json::parse(res->body, nullptr, false)["remaining_seconds"].get<double>(), 9000, 5);

  auto status = cli.Get("/status", Good());
  ASSERT_TRUE(status);
  EXPECT_NEAR(Json::parse(status->body, nullptr, false)["lease"]["remaining_seconds"].get<double>(),
              9000, 5);
}

TEST_F(AgentServerTest, APostWithoutBodyOrLengthIsAnsweredAtOnce) {
  Start(LeaseConfig{"true", std::nullopt, milliseconds(1000)});
  // What `curl -X POST URL?hours=2` sends: no Content-Length, no body.
  const auto start = std::chrono::steady_clock::now();
  std::string raw = RawExchange(port_,
                                "POST /extend?hours=2 HTTP/1.1\r\nHost: x\r\n"
                                "Authorization: Bearer " +
                                    kToken + "\r\n\r\n");
  EXPECT_EQ(StatusOf(raw), 200) << raw;
  raw = RawExchange(
      port_, "POST /status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken + "\r\n\r\n");
  EXPECT_EQ(StatusOf(raw), 404) << raw;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(AgentServerTest, BadExtensionsAreRefusedWithAReason) {
  Start(LeaseConfig{"true", std::nullopt, milliseconds(1000)});
  auto cli = Client();
  for (const char* body : {"", "{", "{\"hours\": \"2\"}", "{\"hours\": -1}", "{\"hours\": 0}",
                           "{\"hours\": 100000}", "[]"}) {
    auto res = cli.Post("/extend", Good(), body, "application/json");
    ASSERT_TRUE(res) << body;
    EXPECT_EQ(res->status, 400) << body;
    Json j = Json::parse(res->body, nullptr, false);
    EXPECT_TRUE(j["error"].is_string()) << res->body;
  }
  auto res = cli.Post("/extend?hours=lots", Good(), "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  // 700 + 700 hours would be more than a month ahead: refused, and the lease unchanged.
  ASSERT_EQ(cli.Post("/extend?hours=700", Good(), "", "application/json")->status, 200);
  res = cli.Post("/extend?hours=700", Good(), "", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("720 hours"), std::string::npos) << res->body;
}

TEST_F(AgentServerTest, AnOversizedBodyIsRefusedWithoutBeingRead) {
  Start(LeaseConfig{"true", std::nullopt, milliseconds(1000)});
  // Announces 10 MB and sends none of it: the answer comes from the headers alone.
  std::string raw =
      RawExchange(port_, "POST /extend HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
                             "\r\nContent-Type: application/json\r\n"
                             "Content-Length: 10000000\r\n\r\n");
  EXPECT_EQ(StatusOf(raw), 413) << raw;
  // A real one over the limit, through the client.
  auto res = Client().Post("/extend", Good(),
                           "{\"hours\": 1, \"pad\": \"" + std::string(8192, 'x') + "\"}",
                           "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  // Without the token the answer is 401 whatever the size.
  raw = RawExchange(port_, "POST /extend HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n");
  EXPECT_EQ(StatusOf(raw), 401) << raw;
}

TEST_F(AgentServerTest, ABodyAnnouncedWithExpectContinueIsAskedForAtOnce) {
  Start(LeaseConfig{"true", std::nullopt, milliseconds(1000)});
  int fd = Connect(port_, "POST /extend HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
                              "\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
                              "Expect: 100-continue\r\n\r\n");
  // The go-ahead comes before the body is sent (curl would wait a second for it).
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "HTTP/1.1 100 Continue\r\n\r\n");
  const std::string body = "{\"hours\": 1}";
  ASSERT_EQ(::send(fd, body.data(), body.size(), MSG_NOSIGNAL), 12);
  n = ::recv(fd, buf, sizeof buf, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(StatusOf(std::string(buf, static_cast<size_t>(n))), 200);
  ::close(fd);
}

TEST_F(AgentServerTest, MalformedRequestsGet400) {
  Start();
  for (const std::string& request : std::vector<std::string>{
           "GARBAGE\r\n\r\n", "GET\r\n\r\n", "GET /status HTTP/9.9 extra\r\n\r\n",
           "GET /status\r\n\r\n",
           // Someone speaking TLS to a plain-HTTP port: the start of a ClientHello.
           std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)}) {
    std::string raw = RawExchange(port_, request);
    EXPECT_EQ(StatusOf(raw), 400) << request << " -> " << raw;
  }
}

TEST_F(AgentServerTest, OversizedUrisAndHeadersAreRefused) {
  Start();
  std::string raw = RawExchange(port_, "GET /" + std::string(10000, 'a') + " HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusOf(raw), 414) << raw.substr(0, 200);
  // A header line over the 8 KiB line limit: the request is not served.
  raw = RawExchange(port_, "GET /status HTTP/1.1\r\nAuthorization: Bearer " + kToken +
                               "\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n");
  EXPECT_EQ(StatusOf(raw), 400) << raw.substr(0, 200);
}

TEST_F(AgentServerTest, AFloodOfHeaderLinesIsCutOff) {
  Start();
  // Each line is short, so only the per-request budget (16 KiB of head) stops this; the
  // server closes the connection instead of collecting 2 MB of headers.
  std::string request = "GET /status HTTP/1.1\r\nAuthorization: Bearer " + kToken + "\r\n";
  for (int i = 0; i < 100000; ++i) request += "X-Header-" + std::to_string(i) + ": v\r\n";
  request += "\r\n";
  std::string raw = RawExchange(port_, request, /*until_close=*/true);
  EXPECT_EQ(StatusOf(raw), 400) << raw.substr(0, 200);
}

TEST_F(AgentServerTest, PipelinedRequestsOnOneConnectionAreAllAnswered) {
  Start();
  const std::string one =
      "GET /lease HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken + "\r\n\r\n";
  const std::string last =
      "GET /lease HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
      "Authorization: Bearer " +
      kToken + "\r\n\r\n";
  std::string raw = RawExchange(port_, one + one + last, /*until_close=*/true);
  size_t answers = 0;
  for (size_t at = 0; (at = raw.find("HTTP/1.1 200 OK", at)) != std::string::npos; ++at) ++answers;
  EXPECT_EQ(answers, 3u) << raw;
}

TEST_F(AgentServerTest, ASilentClientIsDroppedAfterTheIoTimeout) {
  Start({}, std::chrono::seconds(1));
  const auto start = std::chrono::steady_clock::now();
  // Half a request line, then nothing: RawExchange reads until the server closes.
  std::string raw = RawExchange(port_, "GET /sta", /*until_close=*/true);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8)) << raw;
}

TEST_F(AgentServerTest, IdleAndSlowClientsHoldNoWorkerFromARealRequest) {
  Start();  // 8 workers; a connection has 5 s to send its request
  // Twice as many connections as workers: half say nothing, half a byte of a request.
  std::vector<int> idle;
  for (int i = 0; i < 16; ++i) idle.push_back(Connect(port_, i % 2 == 0 ? "" : "G"));
  // The real request is answered well within the 5 s the idle ones may still wait: a
  // worker given to each of them would keep it waiting behind them.
  auto cli = Client();
  for (int round = 0; round < 3; ++round) {
    const auto start = std::chrono::steady_clock::now();
    auto res = cli.Get("/lease", Good());
    ASSERT_TRUE(res) << "round " << round;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << round;
    EXPECT_EQ(res->status, 200);
  }
  for (int fd : idle) ::close(fd);
}

TEST_F(AgentServerTest, AClientSendingItsHeadAByteAtATimeIsDroppedAtTheHeadDeadline) {
  Start({}, std::chrono::seconds(1));
  // Each byte would restart a per-read timeout; the head as a whole has 1 s.
  const std::string head = "GET /status HTTP/1.1\r\nAuthorization: Bearer " + kToken;
  int fd = Connect(port_);
  bool closed = false;
  for (size_t i = 0; i < head.size() && !closed; ++i) {  // at most ~80 rounds of 100 ms
    if (::send(fd, head.data() + i, 1, MSG_NOSIGNAL) != 1) break;
    closed = ClosedWithin(fd, milliseconds(100));
  }
  EXPECT_TRUE(closed);
  ::close(fd);
}

TEST_F(AgentServerTest, PastTheConnectionCapTheClientWaitingLongestIsDropped) {
  Start({}, std::chrono::seconds(60), [](ServerConfig& c) { c.max_connections = 4; });
  std::vector<int> fds;
  for (int i = 0; i < 6; ++i) {
    fds.push_back(Connect(port_));
    // In order: each is taken in before the next connects.
    std::this_thread::sleep_for(milliseconds(20));
  }
  // The two oldest make room; long before their 60 s are up.
  EXPECT_TRUE(ClosedWithin(fds[0], milliseconds(5000)));
  EXPECT_TRUE(ClosedWithin(fds[1], milliseconds(5000)));
  EXPECT_FALSE(ClosedWithin(fds[5], milliseconds(200)));
  // A real request makes room for itself the same way.
  auto res = Client().Get("/lease", Good());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  for (int fd : fds) ::close(fd);
}

TEST_F(AgentServerTest, LogsOneLinePerRequestAndNeverTheToken) {
  Start(LeaseConfig{"true", std::nullopt, milliseconds(1000)});
  auto cli = Client();
  ASSERT_TRUE(cli.Get("/status"));
  ASSERT_TRUE(cli.Get("/status", Good()));
  ASSERT_TRUE(cli.Get("/status?token=" + kToken, Good()));
  ASSERT_TRUE(cli.Post("/extend?hours=1", Good(), "", "application/json"));
  ASSERT_TRUE(cli.Get("/" + kToken, Auth("Bearer nope")));
  RawExchange(port_, "GET /a\r\nInjected: line HTTP/1.1\r\n\r\n");
  // The server logs after it has sent the response: wait (bounded) for the last line.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (Log().size() < 7 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  std::vector<std::string> log = Log();
  size_t request_lines = 0;
  for (const std::string& line : log) {
    EXPECT_EQ(line.find(kToken), std::string::npos) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    if (line.rfind("127.0.0.1 ", 0) == 0) ++request_lines;
  }
  EXPECT_EQ(request_lines, 6u) << ::testing::PrintToString(log);
  auto has = [&](const std::string& text) {
    return std::any_of(log.begin(), log.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(has("GET /status 401"));
  EXPECT_TRUE(has("GET /status 200"));
  EXPECT_TRUE(has("POST /extend 200"));
  EXPECT_TRUE(has("lease extended by 3600 s"));
  EXPECT_TRUE(has("GET /<token> 401"));
  // The raw request: one line, the rest not taken as another request.
  EXPECT_TRUE(has("127.0.0.1 - - 400"));
}

TEST_F(AgentServerTest, ASecondServerCannotTakeTheSamePort) {
  Start();
  LeaseKeeper lease(LeaseConfig{}, {});
  ServerConfig config;
  config.port = port_;
  config.token = kToken;
  config.log = [](const std::string&) {};
  AgentServer second(
      config, [] { return SystemStatus{}; }, lease);
  auto bound = second.Bind();
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.error().sys_errno, EADDRINUSE) << bound.error().ToString();
  EXPECT_NE(bound.error().hint.find("--listen"), std::string::npos);
}

TEST(AgentServer, ListensOnNumericAddressesAndLocalhostButResolvesNoName) {
  LeaseKeeper lease(LeaseConfig{}, {});
  for (const char* host : {"localhost", "127.0.0.1", "gpu01.example.invalid"}) {
    ServerConfig config;
    config.host = host;
    config.port = 0;
    config.token = kToken;
    config.log = [](const std::string&) {};
    AgentServer server(
        config, [] { return SystemStatus{}; }, lease);
    auto bound = server.Bind();
    if (std::string(host) == "gpu01.example.invalid") {
      ASSERT_FALSE(bound.ok());
      EXPECT_NE(bound.error().message.find("not a numeric address"), std::string::npos)
          << bound.error().ToString();
    } else {
      EXPECT_TRUE(bound.ok()) << host << ": " << bound.error().ToString();
    }
  }
}

// Context switches of every thread of this process but the caller: a thread that wakes
// on a timer adds to them even when it finds nothing to do.
long OtherThreadsSwitches() {
  const long self = static_cast<long>(::syscall(SYS_gettid));
  long total = 0;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.' || std::atol(e->d_name) == self) continue;
    std::ifstream status(std::string("/proc/self/task/") + e->d_name + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.find("ctxt_switches:") != std::string::npos) {
        total += std::atol(line.substr(line.find(':') + 1).c_str());
      }
    }
  }
  ::closedir(dir);
  return total;
}

TEST_F(AgentServerTest, AnIdleServerDoesNotWake) {
  Start();
  auto res = Client().Get("/lease", Good());  // the reception has served one connection
  ASSERT_TRUE(res);
  std::this_thread::sleep_for(milliseconds(200));  // the closed connection is let go
  const long before = OtherThreadsSwitches();
  std::this_thread::sleep_for(milliseconds(2500));
  EXPECT_EQ(OtherThreadsSwitches() - before, 0) << "a thread of the idle server woke";
}

// Serves on a unix socket in a private directory; the socket file goes with the server.
class AgentUnixServerTest : public AgentServerTest {
 protected:
  void SetUp() override { socket_path_ = dir_ / "agent.sock"; }
  void StopServer() {
    server_->Stop();
    thread_.join();
    server_.reset();
  }
  testing::TempDir dir_;
};

TEST_F(AgentUnixServerTest, ServesTheTokenHolderOnAPrivateSocketAndRemovesItAfter) {
  Start();
  EXPECT_EQ(port_, 0);
  struct stat st {};
  ASSERT_EQ(::lstat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  testing::TestClient cli(0, socket_path_);
  auto res = cli.Get("/lease", Good());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  // The socket says who we are; the token is still required.
  res = cli.Get("/status");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  const auto log = Log();
  EXPECT_TRUE(std::any_of(log.begin(), log.end(), [](const std::string& l) {
    return l.rfind("uid " + std::to_string(::geteuid()) + " GET /lease 200", 0) == 0;
  })) << ::testing::PrintToString(log);
  StopServer();
  EXPECT_NE(::lstat(socket_path_.c_str(), &st), 0) << "the socket file was left behind";
}

TEST_F(AgentUnixServerTest, ARunningAgentsSocketIsNotTakenButADeadOnesIsReplaced) {
  // What an agent that was killed leaves: a socket file nobody listens on.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  Start();
  LeaseKeeper lease(LeaseConfig{}, {});
  ServerConfig config;
  config.socket_path = socket_path_;
  config.token = kToken;
  config.log = [](const std::string&) {};
  AgentServer second(
      config, [] { return SystemStatus{}; }, lease);
  auto bound = second.Bind();
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.error().sys_errno, EADDRINUSE) << bound.error().ToString();
  auto res = testing::TestClient(0, socket_path_).Get("/lease", Good());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(AgentUnixServerTest, ARemovedSocketFileIsMadeAgainOnRebind) {
  Start();
  EXPECT_FALSE(server_->SocketGone());
  // What logind does to /run/user/UID when the account's last session ends.
  ASSERT_EQ(::unlink(socket_path_.c_str()), 0);
  EXPECT_TRUE(server_->SocketGone());
  Status again = server_->Rebind();
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_FALSE(server_->SocketGone());
  struct stat st {};
  ASSERT_EQ(::lstat(socket_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  for (int i = 0; i < 3; ++i) {  // served by the new socket, several times over
    auto res = testing::TestClient(0, socket_path_).Get("/lease", Good());
    ASSERT_TRUE(res) << i;
    EXPECT_EQ(res->status, 200);
  }
}

TEST_F(AgentUnixServerTest, SomethingElseAtThePathIsRefused) {
  testing::WriteFile(socket_path_, "mine");
  lease_ = std::make_unique<LeaseKeeper>(LeaseConfig{}, [](const std::string&) {});
  ServerConfig config;
  config.socket_path = socket_path_;
  config.token = kToken;
  config.log = [](const std::string&) {};
  AgentServer server(
      config, [] { return SystemStatus{}; }, *lease_);
  auto bound = server.Bind();
  ASSERT_FALSE(bound.ok());
  EXPECT_NE(bound.error().message.find("something else is there"), std::string::npos);
  EXPECT_EQ(testing::ReadPath(socket_path_), "mine");
}

TEST_F(AgentUnixServerTest, AnotherAccountIsClosedUnansweredEvenWhenTheFileLetsItIn) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to connect as another uid";
  Start();
  // Open the way through the file system on purpose: only the peer check is left.
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(socket_path_.c_str(), 0666), 0);
  const std::string request = "GET /lease HTTP/1.1\r\nAuthorization: Bearer " + kToken + "\r\n\r\n";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // 0: connected, sent, and the server closed without a byte; 1: answered; 2: no connect.
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    alarm(10);
    int fd = testing::ConnectTo(0, socket_path_);
    if (fd < 0) ::_exit(2);
    (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buf[64];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ::_exit(n > 0 ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: answered, 2: could not connect, 3: setuid failed";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto noted = [&] {
    auto log = Log();
    return std::any_of(log.begin(), log.end(), [](const std::string& l) {
      return l.find("closed a connection from uid 65534") != std::string::npos;
    });
  };
  while (!noted() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_TRUE(noted()) << ::testing::PrintToString(Log());
  // We still are.
  auto res = testing::TestClient(0, socket_path_).Get("/lease", Good());
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST(AgentServer, StopBeforeOrRightAfterServeDoesNotHang) {
  LeaseKeeper lease(LeaseConfig{}, {});
  for (int i = 0; i < 20; ++i) {
    ServerConfig config;
    config.port = 0;
    config.token = kToken;
    config.log = [](const std::string&) {};
    AgentServer server(
        config, [] { return SystemStatus{}; }, lease);
    ASSERT_TRUE(server.Bind().ok());
    std::thread t([&] { (void)server.Serve(); });
    if (i % 2 == 0) std::this_thread::sleep_for(milliseconds(i));
    server.Stop();
    t.join();
  }
}

}  // namespace
}  // namespace tether::agent
