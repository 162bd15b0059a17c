// Recognising a web app from its HTTP answer, on canned answers shaped as the apps send
// them; and the probe once against a server on this machine's loopback.
#include "forward/http_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tether::forward {
namespace {

using namespace std::chrono_literals;

struct Canned {
  const char* what;
  std::string answer;
  WebApp app;
};

TEST(RecognizeHttpAnswerTest, KnowsTheAppsByTheirAnswers) {
  const std::vector<Canned> cases = {
      {"JupyterLab's / redirects to /lab (Tornado)",
       "HTTP/1.1 302 Found\r\nServer: TornadoServer/6.4.1\r\nContent-Type: text/html; "
       "charset=UTF-8\r\nLocation: /lab?\r\nContent-Length: 0\r\n\r\n",
       WebApp::kJupyter},
      {"Notebook 7 asks for its token",
       "HTTP/1.1 302 Found\r\nserver: TornadoServer/6.3.3\r\nlocation: "
       "http://127.0.0.1:8888/login?next=%2Ftree%3F\r\n\r\n",
       WebApp::kJupyter},
      {"Jupyter's login page",
       "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<!DOCTYPE HTML>\n<html>\n<head>\n"
       "<meta charset=\"utf-8\">\n<title>Jupyter Server</title>\n<script id=\"jupyter-config-"
       "data\" type=\"application/json\">{\"baseUrl\": \"/\", \"token\": \"abc\"}</script>",
       WebApp::kJupyter},
      {"TensorBoard's index",
       "HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nServer: Werkzeug/2.3.7 "
       "Python/3.11.2\r\n\r\n<!doctype html><meta name=\"tb-relative-root\" "
       "content=\"./\"><!doctype html><html><head><meta charset=\"utf-8\"><title>TensorBoard"
       "</title>",
       WebApp::kTensorBoard},
      {"Gradio's page",
       "HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-type: text/html; charset=utf-8\r\n"
       "transfer-encoding: chunked\r\n\r\n5a3\r\n<!doctype html>\n<html lang=\"en\"><head>"
       "<script>window.gradio_config = {\"version\":\"4.44.1\",\"mode\":\"interface\"};"
       "</script></head><body><gradio-app></gradio-app>",
       WebApp::kGradio},
      {"vLLM's /v1/models",
       "HTTP/1.1 200 OK\r\nserver: uvicorn\r\ncontent-type: application/json\r\n\r\n"
       "{\"object\":\"list\",\"data\":[{\"id\":\"facebook/opt-125m\",\"object\":\"model\","
       "\"created\":1733000000,\"owned_by\":\"vllm\",\"root\":\"facebook/opt-125m\"}]}",
       WebApp::kVllm},
      {"vLLM's /v1/models, pretty-printed",
       "HTTP/1.1 200 OK\r\n\r\n{\n  \"data\": [\n    {\n      \"owned_by\" : \"vllm\"\n    }\n  "
       "]\n}",
       WebApp::kVllm},
      {"vLLM's / (a 404 of FastAPI)",
       "HTTP/1.1 404 Not Found\r\nserver: uvicorn\r\ncontent-type: application/json\r\n\r\n"
       "{\"detail\":\"Not Found\"}",
       WebApp::kNone},
      {"python's http.server",
       "HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nContent-type: text/html; "
       "charset=utf-8\r\n\r\n<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<title>Directory "
       "listing for /</title>\n</head>\n<body><ul><li><a href=\"jupyter/\">jupyter/</a></li>",
       WebApp::kNone},
      {"another app's login redirect (not Tornado)",
       "HTTP/1.1 302 FOUND\r\nServer: Werkzeug/3.0.1\r\nLocation: /login?next=%2F\r\n\r\n",
       WebApp::kNone},
      {"another OpenAI-style server",
       "HTTP/1.1 200 OK\r\n\r\n{\"object\":\"list\",\"data\":[{\"id\":\"m\",\"owned_by\":"
       "\"llamacpp\"}]}",
       WebApp::kNone},
      {"an answer that is not HTTP (sshd's banner)", "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
       WebApp::kNone},
      {"a page that says the names, not HTTP", "<title>Jupyter</title> gradio_config vllm",
       WebApp::kNone},
      {"garbage", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), WebApp::kNone},
      {"a status line cut short", "HTTP/1.1 2", WebApp::kNone},
      {"nothing", "", WebApp::kNone},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(RecognizeHttpAnswer(c.answer), c.app) << c.what;
  }
}

TEST(RecognizeHttpAnswerTest, TheUrlIsTheAppsOwnPathAndNothingOfTheAnswer) {
  EXPECT_EQ(WebAppUrl(WebApp::kJupyter, 8889), "http://127.0.0.1:8889/");
  EXPECT_EQ(WebAppUrl(WebApp::kTensorBoard, 6006), "http://127.0.0.1:6006/");
  EXPECT_EQ(WebAppUrl(WebApp::kGradio, 7860), "http://127.0.0.1:7860/");
  EXPECT_EQ(WebAppUrl(WebApp::kVllm, 8000), "http://127.0.0.1:8000/v1/models");
  EXPECT_EQ(WebAppUrl(WebApp::kNone, 8000), "");
  EXPECT_TRUE(IsHttpAnswer("HTTP/1.0 404 Not Found\r\n"));
  EXPECT_FALSE(IsHttpAnswer("HTTP/2 200\r\n"));
  EXPECT_FALSE(IsHttpAnswer("hello"));
}

// A loopback server answering each connection by the path asked, at most `count` of them.
class CannedServer {
 public:
  CannedServer(std::function<std::string(const std::string& path)> answer, int count) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, answer = std::move(answer), count] {
      for (int i = 0; i < count; ++i) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1) return;
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        std::string request;
        char buf[1024];
        while (request.find("\r\n\r\n") == std::string::npos) {
          pollfd q{c, POLLIN, 0};
          if (::poll(&q, 1, 5000) != 1) break;
          ssize_t n = ::read(c, buf, sizeof(buf));
          if (n <= 0) break;
          request.append(buf, static_cast<size_t>(n));
        }
        size_t sp = request.find(' ');
        std::string path = request.substr(sp + 1, request.find(' ', sp + 1) - sp - 1);
        paths.push_back(path);
        std::string out = answer(path);
        (void)!::write(c, out.data(), out.size());
        ::close(c);
      }
    });
  }
  ~CannedServer() {
    Stop();
    ::close(fd_);
  }
  // Ends its thread: `paths` may be read after.
  void Stop() {
    if (!thread_.joinable()) return;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> paths;  // read after Stop

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

std::optional<WebApp> Probe(uint16_t port) {
  net::EventLoop loop;
  net::ConnectPool connects(loop);
  std::optional<WebApp> got;
  HttpProbe probe(loop, connects, port, [&](WebApp app) { got = app; });
  probe.Start();
  for (int i = 0; i < 1000 && !got; ++i) EXPECT_TRUE(loop.RunOnce(10ms).ok());
  return got;
}

TEST(HttpProbeTest, AsksV1ModelsWhenSlashIsAnHttpAnswerItDoesNotKnow) {
  std::optional<WebApp> got;
  std::vector<std::string> paths;
  {
    CannedServer server(
        [](const std::string& path) -> std::string {
          if (path == "/v1/models") {
            return "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n"
                   "{\"object\":\"list\",\"data\":[{\"id\":\"m\",\"owned_by\":\"vllm\"}]}";
          }
          return "HTTP/1.1 404 Not Found\r\n\r\n{\"detail\":\"Not Found\"}";
        },
        2);
    got = Probe(server.port());
    server.Stop();
    paths = server.paths;
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, WebApp::kVllm);
  EXPECT_EQ(paths, (std::vector<std::string>{"/", "/v1/models"}));
}

TEST(HttpProbeTest, AnAnswerThatIsNotHttpIsNoAppAndAsksNothingMore) {
  std::optional<WebApp> got;
  std::vector<std::string> paths;
  {
    CannedServer server([](const std::string&) { return std::string("SSH-2.0-x\r\n"); }, 2);
    got = Probe(server.port());
    server.Stop();
    paths = server.paths;
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, WebApp::kNone);
  EXPECT_EQ(paths, std::vector<std::string>{"/"});
}

}  // namespace
}  // namespace tether::forward
