// What an auto forward serves, from its HTTP answer: when the server process's command
// line does not say (forward/port_watch.h, WellKnownUrl), the daemon asks the forward
// itself once, GET / and, for an HTTP answer it does not know, GET /v1/models, and
// recognises Jupyter, TensorBoard, Gradio and vLLM by their headers, redirects and bodies.
//
// Bounded: each request has kHttpProbeTimeout (connect and answer) and reads at most
// kHttpProbeMaxAnswer; all of it on the loop, non-blocking. Anything else (no answer, not
// HTTP, garbage, an app not known) is simply no URL. Nothing of the answer goes into the
// URL or the log but the app's name: a token in an answer stays there.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/unique_fd.h"
#include "net/connect_pool.h"
#include "net/event_loop.h"

namespace tether::forward {

inline constexpr std::chrono::seconds kHttpProbeTimeout{3};
// The start of an answer is enough: the apps say who they are in their headers or their
// page's first lines.
inline constexpr size_t kHttpProbeMaxAnswer = 16u << 10;

enum class WebApp { kNone, kJupyter, kTensorBoard, kGradio, kVllm };
const char* WebAppName(WebApp app);
// The URL to open on the laptop for `app` served at local_port ("" for kNone).
std::string WebAppUrl(WebApp app, uint16_t local_port);

// Recognises the app from the bytes read of an answer (status line, headers, the body's
// start; maybe cut short). Pure.
WebApp RecognizeHttpAnswer(std::string_view answer);
// Whether `answer` starts as an HTTP/1.x response does: only then is a second path worth
// asking.
bool IsHttpAnswer(std::string_view answer);

class HttpProbe {
 public:
  using Done = std::function<void(WebApp)>;

  // Asks 127.0.0.1:port (the auto forward's own listener: through the tunnel). `done`
  // once, from the loop, never inside Start. Destroying the probe cancels it.
  HttpProbe(net::EventLoop& loop, net::ConnectPool& connects, uint16_t port, Done done);
  ~HttpProbe();
  HttpProbe(const HttpProbe&) = delete;
  HttpProbe& operator=(const HttpProbe&) = delete;

  void Start();

 private:
  void Request(std::string path);
  void OnConnected(Result<UniqueFd> fd);
  void OnReadable();
  // The answer to the current request is all read (or the bound is reached).
  void Answered();
  void Finish(WebApp app);
  void Reset();

  net::EventLoop& loop_;
  net::ConnectPool& connects_;
  uint16_t port_;
  Done done_;
  std::string path_;
  std::string answer_;
  UniqueFd fd_;
  net::ConnectPool::JobId job_ = 0;
  net::EventLoop::TimerId deadline_ = 0;
  bool finished_ = false;
};

}  // namespace tether::forward
