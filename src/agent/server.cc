#include "agent/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <mutex>

#include "agent/api.h"
#include "agent/http_server.h"
#include "agent/listener.h"
#include "agent/log.h"
#include "agent/metrics.h"
#include "agent/token.h"
#include "common/text.h"

namespace tether::agent {
namespace {

// A path in a log line is what a client sent: escaped and cut to this many bytes.
constexpr size_t kMaxLoggedPathBytes = 256;
constexpr size_t kMaxLoggedMethodBytes = 16;
constexpr std::string_view kRedacted = "<token>";
// Requests on one keep-alive connection before it is closed, and how long it may idle.
// A polling `tether status` reuses its connection; an idle one waits in the reception
// (http_server.h), holding no worker, and is closed soon.
constexpr size_t kKeepAliveMaxRequests = 100;
constexpr std::chrono::seconds kKeepAliveIdle{5};
// Request line plus headers, per request: a bearer token, a Host and a client's usual
// dozen headers fit many times over; a flood of header lines does not.
constexpr size_t kMaxRequestHeadBytes = 16 * 1024;

std::string_view ReasonFor(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 401:
      return "unauthorized";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 409:
      return "conflict";
    case 413:
      return "request body too large";
    case 414:
      return "request URI too long";
    case 500:
      return "internal error";
    default:
      return "error";
  }
}

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = std::string(kJsonContentType);
  r.body = DumpJson(body);
  return r;
}

}  // namespace

struct AgentServer::Impl {
  Impl(ServerConfig c, StatusSource s, LeaseKeeper& l)
      : config(std::move(c)), status(std::move(s)), lease(l) {
    if (!config.log) config.log = Log;
  }
  ~Impl() {
    if (http) http->Stop();
    if (!config.socket_path.empty() && socket_file.st_ino != 0) {
      RemoveUnixSocket(config.socket_path, socket_file);
    }
  }

  // Runs before routing and before any body is read.
  std::optional<HttpResponse> Authorize(const HttpRequest& req) const {
    const size_t count = req.HeaderCount("Authorization");
    if (count > 1) return JsonResponse(400, ErrorJson("more than one Authorization header"));
    std::string_view presented;
    if (count == 1) presented = BearerCredentials(*req.Header("Authorization"));
    if (!TokenMatches(config.token, presented)) {
      HttpResponse r =
          JsonResponse(401, ErrorJson(count == 0 ? "no bearer token" : "wrong token",
                                      "send Authorization: Bearer <token>; `tether-agent "
                                      "--print-token` on the server prints it"));
      r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tether-agent\"");
      return r;
    }
    return std::nullopt;
  }

  HttpResponse Route(const HttpRequest& req, const std::string& body) const {
    if (req.method == "GET" && req.path == kStatusPath) {
      SystemStatus s = status();
      s.lease = lease.Snapshot();
      return JsonResponse(200, StatusToJson(s, config.version));
    }
    if (req.method == "GET" && req.path == kMetricsPath) {
      SystemStatus s = status();
      s.lease = lease.Snapshot();
      HttpResponse r;
      r.content_type = std::string(kMetricsContentType);
      r.body = RenderMetrics(s, config.version);
      return r;
    }
    if (req.method == "GET" && req.path == kLeasePath) {
      return JsonResponse(200, LeaseToJson(lease.Snapshot()));
    }
    if (req.method == "POST" && req.path == kExtendPath) return Extend(req, body);
    return JsonResponse(404, ErrorJson(ReasonFor(404)));
  }

  HttpResponse Extend(const HttpRequest& req, const std::string& body) const {
    if (!lease.enabled()) {
      return JsonResponse(409, ErrorJson("this agent keeps no lease",
                                         "start tether-agent with --lease-command CMD "
                                         "[--lease-hours N]"));
    }
    std::optional<std::string> query = req.QueryParam("hours");
    auto by = ParseExtendRequest(query, body);
    if (!by) return JsonResponse(400, ErrorJson(by.error().message, by.error().hint));
    auto snapshot = lease.Extend(*by);
    if (!snapshot) {
      return JsonResponse(400, ErrorJson(snapshot.error().message, snapshot.error().hint));
    }
    config.log("lease extended by " + std::to_string(by->count() / 1000) + " s");
    return JsonResponse(200, LeaseToJson(*snapshot));
  }

  // "127.0.0.1 GET /status 200", "uid 1000 GET /lease 200"; "-" for the method and path
  // of a request that could not be parsed. A client that put the token in the path (it
  // belongs in the header) does not get it logged either.
  std::string LogLine(const std::string& peer, const HttpRequest* req, int code) const {
    std::string method = "-";
    std::string path = "-";
    if (req != nullptr) {
      method = EscapeForLog(req->method, kMaxLoggedMethodBytes);
      path = req->path;
      for (size_t at = 0;
           !config.token.empty() && (at = path.find(config.token, at)) != std::string::npos;) {
        path.replace(at, config.token.size(), kRedacted);
        at += kRedacted.size();
      }
      path = EscapeForLog(path, kMaxLoggedPathBytes);
    }
    return peer + " " + method + " " + path + " " + std::to_string(code);
  }

  HttpHandlers Handlers() {
    HttpHandlers h;
    h.before_body = [this](const HttpRequest& req) { return Authorize(req); };
    h.handle = [this](const HttpRequest& req, const std::string& body) {
      try {
        return Route(req, body);
      } catch (const std::exception&) {
        config.log("internal error while serving a request");
        return JsonResponse(500, ErrorJson(ReasonFor(500)));
      }
    };
    h.refusal = [](int code, const std::string& reason) {
      return JsonResponse(code, ErrorJson(ReasonFor(code), reason));
    };
    h.log = [this](const std::string& peer, const HttpRequest* req, int code) {
      config.log(LogLine(peer, req, code));
    };
    h.note = [this](const std::string& line) { config.log(line); };
    return h;
  }

  ServerConfig config;
  StatusSource status;
  LeaseKeeper& lease;
  struct stat socket_file {};

  std::mutex mu;
  bool stopping = false;
  std::unique_ptr<HttpServer> http;  // made by Bind
};

AgentServer::AgentServer(ServerConfig config, StatusSource status, LeaseKeeper& lease)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(status), lease)) {}

AgentServer::~AgentServer() { Stop(); }

Result<int> AgentServer::Bind() {
  const ServerConfig& c = impl_->config;
  int port = 0;
  std::optional<uid_t> only_uid;
  Result<UniqueFd> fd = MakeError("listen", "not bound");
  if (!c.socket_path.empty()) {
    only_uid = ::geteuid();
    fd = ListenUnix(c.socket_path, *only_uid, &impl_->socket_file);
  } else {
    fd = ListenTcp(ListenAddress{c.host, c.port}, &port);
  }
  if (!fd) return fd.take_error();
  HttpLimits limits;
  limits.max_head_bytes = kMaxRequestHeadBytes;
  limits.max_body_bytes = c.max_body_bytes;
  limits.workers = c.worker_threads;
  limits.max_connections = c.max_connections;
  limits.max_requests = kKeepAliveMaxRequests;
  limits.head_timeout = c.io_timeout;
  limits.idle_timeout = kKeepAliveIdle;
  limits.io_timeout = c.io_timeout;
  std::lock_guard lock(impl_->mu);
  impl_->http = std::make_unique<HttpServer>(std::move(*fd), only_uid, limits, impl_->Handlers());
  if (impl_->stopping) impl_->http->Stop();
  return port;
}

Status AgentServer::Serve() {
  HttpServer* http = nullptr;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return Status::Ok();
    http = impl_->http.get();
  }
  if (http == nullptr) return MakeError("serve", "Serve() before Bind()");
  return http->Serve();
}

bool AgentServer::SocketGone() const {
  const std::string& path = impl_->config.socket_path;
  if (path.empty()) return false;
  struct stat now {};
  std::lock_guard lock(impl_->mu);
  return ::lstat(path.c_str(), &now) != 0 || now.st_dev != impl_->socket_file.st_dev ||
         now.st_ino != impl_->socket_file.st_ino;
}

Status AgentServer::Rebind() {
  const std::string& path = impl_->config.socket_path;
  if (path.empty()) return MakeError("listen", "not on a unix socket");
  struct stat file {};
  auto fd = ListenUnix(path, ::geteuid(), &file);
  if (!fd) return fd.take_error();
  std::lock_guard lock(impl_->mu);
  if (!impl_->http) return MakeError("listen", "Rebind() before Bind()");
  impl_->socket_file = file;
  impl_->http->ReplaceListener(std::move(*fd));
  return Status::Ok();
}

void AgentServer::Stop() {
  std::lock_guard lock(impl_->mu);
  impl_->stopping = true;
  if (impl_->http) impl_->http->Stop();
}

}  // namespace tether::agent
