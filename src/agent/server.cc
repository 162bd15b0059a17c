#include "agent/server.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>

#include "agent/api.h"
#include "agent/bounded_http.h"
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
// (bounded_http.h), holding no worker, and is closed soon.
constexpr size_t kKeepAliveMaxRequests = 100;
constexpr time_t kKeepAliveIdleSeconds = 5;
// Request line plus headers, per request: a bearer token, a Host and a client's usual
// dozen headers fit many times over; a flood of header lines does not.
constexpr size_t kMaxRequestHeadBytes = 16 * 1024;
// Bound on Stop() waiting for a just-started Serve() to reach its accept loop.
constexpr std::chrono::milliseconds kStopWait{2000};

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

void SendJson(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(DumpJson(body), std::string(kJsonContentType));
}

// Our listening socket: SO_REUSEADDR so a restart binds at once, but not httplib's
// default SO_REUSEPORT, which would let a second agent bind the same port and take a
// random share of the connections (with a different token) instead of failing loudly.
// Close-on-exec so no child (the lease command) keeps the port open after we exit.
void ListenSocketOptions(int sock) {
  int yes = 1;
  ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  int flags = ::fcntl(sock, F_GETFD);
  if (flags >= 0) ::fcntl(sock, F_SETFD, flags | FD_CLOEXEC);
}

}  // namespace

struct AgentServer::Impl {
  Impl(ServerConfig c, StatusSource s, LeaseKeeper& l)
      : config(std::move(c)),
        status(std::move(s)),
        lease(l),
        http(HttpLimits{kMaxRequestHeadBytes, config.max_body_bytes, config.worker_threads,
                        config.max_connections, config.io_timeout,
                        std::chrono::seconds(kKeepAliveIdleSeconds)}) {
    if (!config.log) config.log = Log;
  }

  // Refusals close the connection: a client without the token gets one answer, and a
  // body we declined to read is not taken for the next request.
  static httplib::Server::HandlerResponse Refuse(httplib::Response& res, int status,
                                                 const Json& body) {
    SendJson(res, status, body);
    res.set_header("Connection", "close");
    BoundedHttpServer::CloseConnectionAfterResponse();
    return httplib::Server::HandlerResponse::Handled;
  }

  // Runs before routing and before any body is read.
  httplib::Server::HandlerResponse Authorize(const httplib::Request& req,
                                             httplib::Response& res) const {
    const size_t count = req.get_header_value_count("Authorization");
    if (count > 1) return Refuse(res, 400, ErrorJson("more than one Authorization header"));
    std::string_view presented;
    std::string header;
    if (count == 1) {
      header = req.get_header_value("Authorization");
      presented = BearerCredentials(header);
    }
    if (!TokenMatches(config.token, presented)) {
      res.set_header("WWW-Authenticate", "Bearer realm=\"tether-agent\"");
      return Refuse(res, 401,
                    ErrorJson(count == 0 ? "no bearer token" : "wrong token",
                              "send Authorization: Bearer <token>; `tether-agent --print-token` "
                              "on the server prints it"));
    }
    // httplib would read (and drop) an announced body before saying 413: say it now.
    if (req.has_header("Content-Length")) {
      auto length = ParseUint(req.get_header_value("Content-Length"));
      if (!length) return Refuse(res, 400, ErrorJson("bad Content-Length"));
      if (*length > config.max_body_bytes) {
        return Refuse(res, 413,
                      ErrorJson(ReasonFor(413),
                                "at most " + std::to_string(config.max_body_bytes) + " bytes"));
      }
    } else if (!req.has_header("Transfer-Encoding") && MayHaveBody(req.method)) {
      // No length and not chunked: HTTP/1.1 says there is no body, but httplib 0.11 would
      // wait for one until the read timeout (`curl -X POST .../extend?hours=2` took 5 s
      // and got 400). Such a request is answered here, with the empty body it has.
      if (req.method == "POST" && req.path == kExtendPath) {
        Extend(req, res);
      } else {
        SendJson(res, 404, ErrorJson(ReasonFor(404)));
      }
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  }

  static bool MayHaveBody(const std::string& method) {
    return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
  }

  void Routes() {
    http.Get(std::string(kStatusPath), [this](const httplib::Request&, httplib::Response& res) {
      SystemStatus s = status();
      s.lease = lease.Snapshot();
      SendJson(res, 200, StatusToJson(s, config.version));
    });
    http.Get(std::string(kMetricsPath), [this](const httplib::Request&, httplib::Response& res) {
      SystemStatus s = status();
      s.lease = lease.Snapshot();
      res.status = 200;
      res.set_content(RenderMetrics(s, config.version), std::string(kMetricsContentType));
    });
    http.Get(std::string(kLeasePath), [this](const httplib::Request&, httplib::Response& res) {
      SendJson(res, 200, LeaseToJson(lease.Snapshot()));
    });
    http.Post(std::string(kExtendPath),
              [this](const httplib::Request& req, httplib::Response& res) { Extend(req, res); });
  }

  void Extend(const httplib::Request& req, httplib::Response& res) const {
    if (!lease.enabled()) {
      SendJson(res, 409,
               ErrorJson("this agent keeps no lease",
                         "start tether-agent with --lease-command CMD [--lease-hours N]"));
      return;
    }
    std::optional<std::string> query;
    if (req.has_param("hours")) query = req.get_param_value("hours");
    auto by = ParseExtendRequest(query, req.body);
    if (!by) {
      SendJson(res, 400, ErrorJson(by.error().message, by.error().hint));
      return;
    }
    auto snapshot = lease.Extend(*by);
    if (!snapshot) {
      SendJson(res, 400, ErrorJson(snapshot.error().message, snapshot.error().hint));
      return;
    }
    config.log("lease extended by " + std::to_string(by->count() / 1000) + " s");
    SendJson(res, 200, LeaseToJson(*snapshot));
  }

  // "127.0.0.1 GET /status 200". httplib fills neither peer nor method for a request it
  // could not parse: "-" then. A client that put the token in the path (it belongs in the
  // header) does not get it logged either.
  std::string LogLine(const httplib::Request& req, const httplib::Response& res) const {
    std::string path = req.path;
    for (size_t at = 0;
         !config.token.empty() && (at = path.find(config.token, at)) != std::string::npos;) {
      path.replace(at, config.token.size(), kRedacted);
      at += kRedacted.size();
    }
    auto or_dash = [](std::string s) { return s.empty() ? std::string("-") : s; };
    return or_dash(req.remote_addr) + " " +
           or_dash(EscapeForLog(req.method, kMaxLoggedMethodBytes)) + " " +
           or_dash(EscapeForLog(path, kMaxLoggedPathBytes)) + " " + std::to_string(res.status);
  }

  void Configure() {
    http.set_socket_options(ListenSocketOptions);
    http.set_payload_max_length(config.max_body_bytes);
    http.set_read_timeout(config.io_timeout);
    http.set_write_timeout(config.io_timeout);
    http.set_keep_alive_max_count(kKeepAliveMaxRequests);
    http.set_keep_alive_timeout(kKeepAliveIdleSeconds);
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return Authorize(req, res);
    });
    // httplib's own refusals (400 malformed, 404, 413, 414) get a JSON body like ours.
    // After a request that could not be parsed, what follows on the connection cannot be
    // trusted to start a request either: close it.
    http.set_error_handler(
        httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
          if (res.status == 400 || res.status == 413 || res.status == 414) {
            res.set_header("Connection", "close");
            BoundedHttpServer::CloseConnectionAfterResponse();
          }
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          SendJson(res, res.status, ErrorJson(ReasonFor(res.status)));
          return httplib::Server::HandlerResponse::Handled;
        }));
    http.set_exception_handler(
        [this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          config.log("internal error while serving a request");
          SendJson(res, 500, ErrorJson(ReasonFor(500)));
        });
    http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      config.log(LogLine(req, res));
    });
    Routes();
  }

  ServerConfig config;
  StatusSource status;
  LeaseKeeper& lease;
  BoundedHttpServer http;

  // httplib's stop() does nothing until its accept loop runs, so a Stop() that lands
  // between Serve() starting and the loop starting would be lost; these close that gap.
  std::mutex mu;
  bool stopping = false;
  bool serving = false;
  std::atomic<bool> serve_returned{false};
};

AgentServer::AgentServer(ServerConfig config, StatusSource status, LeaseKeeper& lease)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(status), lease)) {
  impl_->Configure();
}

AgentServer::~AgentServer() { Stop(); }

Result<int> AgentServer::Bind() {
  const ServerConfig& c = impl_->config;
  const std::string where = c.host + ":" + std::to_string(c.port);
  errno = 0;
  int port = c.port;
  bool ok = false;
  if (c.port == 0) {
    port = impl_->http.bind_to_any_port(c.host);
    ok = port > 0;
  } else {
    ok = impl_->http.bind_to_port(c.host, c.port);
  }
  if (!ok) {
    int e = errno;
    Error err = e != 0 ? ErrnoError("listen", "cannot listen on " + where, e)
                       : MakeError("listen", "cannot listen on " + where);
    err.hint = e == EADDRINUSE ? "another program (an older tether-agent?) has the port; stop "
                                 "it or choose another with --listen"
                               : "check the address given to --listen";
    return err;
  }
  return port;
}

Status AgentServer::Serve() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return Status::Ok();
    impl_->serving = true;
  }
  const bool ok = impl_->http.listen_after_bind();
  impl_->serve_returned = true;
  if (!ok) return MakeError("serve", "the HTTP server stopped with an error");
  return Status::Ok();
}

void AgentServer::Stop() {
  bool serving = false;
  {
    std::lock_guard lock(impl_->mu);
    // httplib's stop() asserts when called twice on a running server: once only.
    serving = impl_->serving && !impl_->stopping;
    impl_->stopping = true;
  }
  if (!serving) return;
  // Serve() is on its way into the accept loop (a few instructions): wait for it.
  const auto deadline = std::chrono::steady_clock::now() + kStopWait;
  while (!impl_->http.is_running() && !impl_->serve_returned &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->http.stop();
}

}  // namespace tether::agent
