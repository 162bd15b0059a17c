#include "forward/http_probe.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

namespace tether::forward {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool Has(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// The value of header `name` (lower case, with its colon) in the lower-cased header block,
// "" when absent.
std::string_view Header(std::string_view headers, std::string_view name) {
  size_t at = 0;
  while ((at = headers.find(name, at)) != std::string_view::npos) {
    if (at > 0 && headers[at - 1] == '\n') {
      size_t start = at + name.size();
      size_t end = headers.find_first_of("\r\n", start);
      std::string_view value = headers.substr(start, end - start);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      return value;
    }
    at += name.size();
  }
  return {};
}

// The path of a Location (an absolute URL's or a relative one's).
std::string_view LocationPath(std::string_view location) {
  if (size_t scheme = location.find("://"); scheme != std::string_view::npos) {
    size_t slash = location.find('/', scheme + 3);
    return slash == std::string_view::npos ? std::string_view("/") : location.substr(slash);
  }
  return location;
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

const char* WebAppName(WebApp app) {
  switch (app) {
    case WebApp::kNone:
      return "";
    case WebApp::kJupyter:
      return "Jupyter";
    case WebApp::kTensorBoard:
      return "TensorBoard";
    case WebApp::kGradio:
      return "Gradio";
    case WebApp::kVllm:
      return "vLLM";
  }
  return "";
}

std::string WebAppUrl(WebApp app, uint16_t local_port) {
  if (app == WebApp::kNone) return "";
  std::string base = "http://127.0.0.1:" + std::to_string(local_port);
  return base + (app == WebApp::kVllm ? "/v1/models" : "/");
}

bool IsHttpAnswer(std::string_view answer) {
  if (!StartsWith(answer, "HTTP/1.0 ") && !StartsWith(answer, "HTTP/1.1 ")) return false;
  if (answer.size() < 12) return false;
  return std::all_of(answer.begin() + 9, answer.begin() + 12,
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

WebApp RecognizeHttpAnswer(std::string_view answer) {
  if (!IsHttpAnswer(answer)) return WebApp::kNone;
  size_t split = answer.find("\r\n\r\n");
  size_t body_at = split == std::string_view::npos ? answer.size() : split + 4;
  if (split == std::string_view::npos) {
    split = answer.find("\n\n");
    body_at = split == std::string_view::npos ? answer.size() : split + 2;
  }
  const std::string headers = Lower(answer.substr(0, std::min(split, answer.size())));
  const std::string body = Lower(answer.substr(body_at));
  std::string compact;  // the body without white space, for JSON however it is spaced
  std::copy_if(body.begin(), body.end(), std::back_inserter(compact),
               [](unsigned char c) { return std::isspace(c) == 0; });

  // vLLM's /v1/models: the OpenAI list with its own owner.
  if (Has(compact, "\"owned_by\":\"vllm\"")) return WebApp::kVllm;
  // Jupyter: its page's config or title, or Tornado redirecting to its own paths (/ goes
  // to /lab or /tree, or to /login when a token is asked).
  if (Has(body, "jupyter-config-data") || Has(body, "<title>jupyter")) return WebApp::kJupyter;
  std::string_view location = LocationPath(Header(headers, "location:"));
  if (Has(Header(headers, "server:"), "tornado") &&
      (StartsWith(location, "/lab") || StartsWith(location, "/tree") ||
       StartsWith(location, "/login?next="))) {
    return WebApp::kJupyter;
  }
  if (Has(body, "<title>tensorboard") || Has(body, "tb-relative-root")) {
    return WebApp::kTensorBoard;
  }
  if (Has(body, "gradio_config") || Has(body, "<gradio-app")) return WebApp::kGradio;
  return WebApp::kNone;
}

HttpProbe::HttpProbe(net::EventLoop& loop, net::ConnectPool& connects, uint16_t port, Done done)
    : loop_(loop), connects_(connects), port_(port), done_(std::move(done)) {}

HttpProbe::~HttpProbe() { Reset(); }

void HttpProbe::Start() {
  if (path_.empty() && !finished_) Request("/");
}

void HttpProbe::Request(std::string path) {
  path_ = std::move(path);
  answer_.clear();
  deadline_ = loop_.AddTimer(kHttpProbeTimeout, [this] {
    deadline_ = 0;
    Answered();  // what came so far
  });
  job_ = connects_.Connect("127.0.0.1", port_, "", kHttpProbeTimeout, [this](Result<UniqueFd> fd) {
    job_ = 0;
    OnConnected(std::move(fd));
  });
}

void HttpProbe::OnConnected(Result<UniqueFd> fd) {
  if (!fd.ok()) return Finish(WebApp::kNone);
  fd_ = std::move(*fd);
  const std::string request = "GET " + path_ +
                              " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                              "\r\nUser-Agent: tether\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  // A fresh connection's buffer takes these hundred bytes at once.
  ssize_t n = ::send(fd_.get(), request.data(), request.size(), MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(request.size())) return Finish(WebApp::kNone);
  loop_.Watch(fd_.get(), net::kReadable, [this](unsigned) { OnReadable(); });
}

void HttpProbe::OnReadable() {
  char buf[4096];
  for (;;) {
    size_t room = kHttpProbeMaxAnswer - answer_.size();
    ssize_t n = ::read(fd_.get(), buf, std::min(room, sizeof(buf)));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      // Enough to tell already: no need to wait for the rest.
      if (RecognizeHttpAnswer(answer_) != WebApp::kNone) Answered();
      return;
    }
    if (n <= 0) return Answered();  // the end, or an error: what came is all
    answer_.append(buf, static_cast<size_t>(n));
    if (answer_.size() >= kHttpProbeMaxAnswer) return Answered();
  }
}

void HttpProbe::Answered() {
  WebApp app = RecognizeHttpAnswer(answer_);
  bool http = IsHttpAnswer(answer_);
  Reset();
  // An HTTP server that is none of them at / may be vLLM's API (/ is its 404).
  if (app == WebApp::kNone && http && path_ == "/") return Request("/v1/models");
  Finish(app);
}

void HttpProbe::Finish(WebApp app) {
  Reset();
  answer_.clear();
  if (finished_) return;
  finished_ = true;
  done_(app);  // last: it may destroy this
}

void HttpProbe::Reset() {
  if (deadline_ != 0) {
    loop_.CancelTimer(deadline_);
    deadline_ = 0;
  }
  if (job_ != 0) {
    connects_.Cancel(job_);
    job_ = 0;
  }
  if (fd_) {
    loop_.Unwatch(fd_.get());
    fd_.Reset();
  }
}

}  // namespace tether::forward
