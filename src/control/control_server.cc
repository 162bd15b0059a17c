#include "control/control_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/log.h"
#include "net/peer_uid.h"
#include "net/socket.h"

namespace tether::control {
namespace {

// Connections accepted per wake-up: a burst of clients cannot hold the loop.
constexpr int kAcceptBurst = 16;

}  // namespace

ControlServer::ControlServer(net::EventLoop& loop, UniqueFd listener)
    : loop_(loop), listener_(std::move(listener)) {
  acceptor_ =
      std::make_unique<net::Acceptor>(loop_, listener_.get(), "control", kAcceptBurst,
                                      [this](UniqueFd conn) { OnAccepted(std::move(conn)); });
}

ControlServer::~ControlServer() {
  acceptor_.reset();
  for (auto& [fd, client] : clients_) loop_.Unwatch(fd);
}

void ControlServer::Register(const std::string& cmd, Handler handler) {
  handlers_[cmd] = std::move(handler);
}

void ControlServer::RegisterLater(const std::string& cmd, LaterHandler handler) {
  later_handlers_[cmd] = std::move(handler);
}

void LaterReply::Send(Result<Json> reply) {
  if (!sink_) return;
  Sink sink = std::move(sink_);
  sink_ = nullptr;
  sink(std::move(reply));
}

namespace {

// How much of an unknown "cmd" an error quotes back.
constexpr size_t kMaxQuotedCmdBytes = 64;

// The last resort: handlers answer Errors, but one that throws all the same (a JSON
// accessor missed in review, std::bad_alloc) must cost the client its request, never the
// daemon and its forwards.
Result<Json> RunHandler(const std::string& cmd, const Handler& handler, const Json& request) {
  try {
    return handler(request);
  } catch (const std::exception& e) {
    spdlog::error("control: the \"{}\" handler failed: {}", cmd, e.what());
    return MakeError("control", "internal error in \"" + cmd + "\": " + e.what(),
                     "this is a bug in tether; the daemon carries on");
  } catch (...) {
    spdlog::error("control: the \"{}\" handler failed", cmd);
    return MakeError("control", "internal error in \"" + cmd + "\"",
                     "this is a bug in tether; the daemon carries on");
  }
}

// {"ok": true, fields...} or {"ok": false, "error": ..., "hint": ...}.
Json ReplyJson(Result<Json> reply) {
  if (!reply.ok()) {
    Json out{{"ok", false}, {"error", reply.error().message}};
    if (!reply.error().hint.empty()) out["hint"] = reply.error().hint;
    return out;
  }
  Json out = std::move(*reply);
  if (!out.is_object()) out = Json{{"result", out}};
  out["ok"] = true;
  return out;
}

}  // namespace

Json ControlServer::HandleLine(const std::string& line) {
  // Without a connection, a later reply is only seen if it is given at once.
  auto reply = HandleLineFrom(0, line);
  if (reply) return *reply;
  return Json{{"ok", false}, {"error", "this command answers later, on a control connection"}};
}

std::optional<Json> ControlServer::HandleLineFrom(uint64_t client, const std::string& line) {
  // nlohmann's lexer stops at a NUL byte and would ignore what follows: refuse it here.
  if (line.find('\0') != std::string::npos) {
    return Json{{"ok", false}, {"error", "request is not valid JSON (NUL byte)"}};
  }
  Json request = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return Json{{"ok", false}, {"error", "request is not valid JSON"}};
  if (!request.is_object()) return Json{{"ok", false}, {"error", "request is not a JSON object"}};
  auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string()) {
    return Json{{"ok", false}, {"error", "request has no \"cmd\" string"}};
  }
  auto handler = handlers_.find(cmd->get<std::string>());
  auto later = later_handlers_.find(cmd->get<std::string>());
  if (handler == handlers_.end() && later != later_handlers_.end()) {
    // Answered at once when the handler replies within the call (an error, mostly).
    auto at_once = std::make_shared<std::optional<Json>>();
    auto in_call = std::make_shared<bool>(true);
    std::weak_ptr<ControlServer*> alive = alive_;
    LaterReply reply(client, [at_once, in_call, alive, client](Result<Json> r) {
      if (*in_call) {
        *at_once = ReplyJson(std::move(r));
        return;
      }
      if (auto server = alive.lock()) (*server)->Deliver(client, std::move(r));
    });
    const std::string name = later->first;
    Result<Json> failed = RunHandler(
        name,
        [&](const Json& req) -> Result<Json> {
          later->second(req, std::move(reply));
          return Json::object();
        },
        request);
    *in_call = false;
    if (!failed.ok()) return ReplyJson(std::move(failed));
    if (*at_once) return std::move(**at_once);
    return std::nullopt;
  }
  if (handler == handlers_.end()) {
    std::string name = cmd->get<std::string>();
    // Quoted back, but bounded: the line may be 64 KiB.
    if (name.size() > kMaxQuotedCmdBytes) {
      size_t cut = kMaxQuotedCmdBytes;
      // Not inside a UTF-8 sequence: the reply must stay valid JSON text.
      while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
      name = name.substr(0, cut) + "...";
    }
    return Json{{"ok", false}, {"error", "unknown cmd \"" + name + "\""}};
  }
  return ReplyJson(RunHandler(handler->first, handler->second, request));
}

void ControlServer::OnAccepted(UniqueFd conn) {
  if (clients_.size() >= kMaxClients) return;  // closes it
  if (Status peer = net::CheckPeerIsOwner(conn.get()); !peer.ok()) {
    // The token of `env` and every forward are the owner's: refused, with a reason the
    // peer can read, and logged as OpenSSH's mux master does.
    spdlog::warn("control: {}; refused", peer.error().message);
    std::string reply =
        Json{{"ok", false}, {"error", "permission denied: " + peer.error().message}}.dump() + "\n";
    (void)::send(conn.get(), reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    return;  // closes it
  }
  int fd = conn.get();
  auto client = std::make_unique<Client>();
  client->id = next_client_++;
  client->fd = std::move(conn);
  fd_of_[client->id] = fd;
  clients_.emplace(fd, std::move(client));
  loop_.Watch(fd, net::kReadable, [this, fd](unsigned events) { OnClient(fd, events); });
}

void ControlServer::Drop(int fd) {
  loop_.Unwatch(fd);
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  const uint64_t id = it->second->id;
  fd_of_.erase(id);
  clients_.erase(it);
  if (on_gone_) on_gone_(id);
}

void ControlServer::Deliver(uint64_t client, Result<Json> reply) {
  auto at = fd_of_.find(client);
  if (at == fd_of_.end()) return;
  auto it = clients_.find(at->second);
  if (it == clients_.end() || !it->second->owed) return;
  Client& c = *it->second;
  c.owed = false;
  c.out += ReplyJson(std::move(reply)).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  (void)Serve(c);
}

void ControlServer::OnClient(int fd, unsigned events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  if (c.draining) {
    // Closing with unread input would send a reset that can destroy the error reply
    // still in flight: read and drop what the client sends, bounded, until its EOF.
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) c.discarded += static_cast<size_t>(n);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
        c.discarded > 16 * kMaxLineBytes) {
      Drop(fd);
    }
    return;
  }
  if (events & (net::kReadable | net::kHangup)) {
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      // The peer is gone or half-closed: answer what is complete, then close.
      c.closing = true;
    } else if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
    }
  }
  (void)Serve(c);
}

bool ControlServer::Serve(Client& c) {
  const int fd = c.fd.get();
  size_t nl;
  while (!c.owed && (nl = c.in.find('\n')) != std::string::npos && nl <= kMaxLineBytes) {
    std::string line = c.in.substr(0, nl);
    c.in.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    // May send a reply to this very client before it returns (Deliver), or drop it.
    const uint64_t id = c.id;
    c.owed = true;
    std::optional<Json> reply = HandleLineFrom(id, line);
    if (fd_of_.find(id) == fd_of_.end()) return false;
    if (!reply) continue;  // owed: the lines after it wait
    c.owed = false;
    c.out += reply->dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }
  // What is left has no newline within the limit: a line too long, however the bytes
  // arrived.
  if (!c.owed && c.in.size() > kMaxLineBytes) {
    c.out += Json{{"ok", false}, {"error", "request line too long"}}.dump() + "\n";
    c.in.clear();
    c.closing = true;
  }
  if (c.owed && (c.closing || c.in.size() > kMaxLineBytes)) {
    // Gone (or half-closed, or sending without end) while waiting: what it waited for
    // may be given up.
    Drop(fd);
    return false;
  }
  if (!c.out.empty()) {
    ssize_t n = ::send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) c.out.erase(0, static_cast<size_t>(n));
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      Drop(fd);
      return false;
    }
  }
  if (c.closing && c.out.empty()) {
    ::shutdown(fd, SHUT_WR);
    c.draining = true;
    loop_.SetInterest(fd, net::kReadable);
    return true;
  }
  unsigned interest = c.closing ? 0u : unsigned{net::kReadable};
  if (!c.out.empty()) interest |= net::kWritable;
  loop_.SetInterest(fd, interest);
  return true;
}

}  // namespace tether::control
