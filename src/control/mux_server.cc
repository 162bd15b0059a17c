#include "control/mux_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "control/mux_wire.h"
#include "net/peer_uid.h"
#include "net/socket.h"

namespace tether::control {
namespace {

// Clients at once; more are closed at accept (a runaway script must not exhaust fds).
constexpr size_t kMaxMuxClients = 256;
// Descriptors one client may have in flight before its request names them.
constexpr size_t kMaxQueuedFds = 8;
// Connections accepted per wake-up: a burst of clients cannot hold the loop.
constexpr int kAcceptBurst = 16;
// Longest TERM a session may ask for: terminal names are a few bytes; sshd would pass a
// longer one to the remote environment as it is.
constexpr size_t kMaxTermBytes = 256;

uint32_t RequestIdOf(const mux::ClientMessage& m) {
  return std::visit(
      [](const auto& v) -> uint32_t {
        if constexpr (requires { v.request_id; }) {
          return v.request_id;
        } else {
          return 0;
        }
      },
      m);
}

// What a decoded request may still not ask for (the codec checked its shape: lengths,
// NULs, port ranges). The error's message goes back to the client as MUX_S_FAILURE.
Status Validate(const mux::ClientMessage& m) {
  if (const auto* s = std::get_if<mux::NewSession>(&m)) {
    if (s->term.size() > kMaxTermBytes) {
      return MakeError("mux", "TERM is " + std::to_string(s->term.size()) +
                                  " bytes long; at most " + std::to_string(kMaxTermBytes));
    }
    if (s->subsystem && s->command.empty()) {
      return MakeError("mux", "a subsystem request names no subsystem");
    }
  } else if (const auto* f = std::get_if<mux::StdioForward>(&m)) {
    // The session's target is a TCP port (16 bits): a streamlocal one (ssh -W /path)
    // would be truncated to port 65534.
    if (f->port == mux::kPortStreamLocal) {
      return MakeError("mux", "a stdio forward to a unix socket is not supported");
    }
    if (f->host.empty() || f->port == 0 || f->port > 65535) {
      return MakeError("mux", "a stdio forward needs a host and a port in 1..65535");
    }
  }
  return Status::Ok();
}

}  // namespace

MuxServer::MuxServer(net::EventLoop& loop, UniqueFd listener, std::string path, MuxHost& host)
    : loop_(loop), listener_(std::move(listener)), path_(std::move(path)), host_(host) {
  handlers_ = {
      {mux::kMsgHello, &MuxServer::OnHello},
      {mux::kNewSession, &MuxServer::OnNewSession},
      {mux::kNewStdioFwd, &MuxServer::OnStdioForward},
      {mux::kAliveCheck, &MuxServer::OnAliveCheck},
      {mux::kTerminate, &MuxServer::OnTerminate},
      {mux::kOpenFwd, &MuxServer::OnForward},
      {mux::kCloseFwd, &MuxServer::OnForward},
      {mux::kStopListening, &MuxServer::OnStopListening},
      {mux::kProxy, &MuxServer::OnProxy},
  };
  acceptor_ =
      std::make_unique<net::Acceptor>(loop_, listener_.get(), "mux", kAcceptBurst,
                                      [this](UniqueFd conn) { OnAccepted(std::move(conn)); });
}

MuxServer::~MuxServer() {
  StopListening();
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : clients_) ids.push_back(id);
  for (uint64_t id : ids) Drop(id);
}

void MuxServer::StopListening() {
  if (!listener_) return;
  acceptor_.reset();
  listener_.Reset();
  if (remove_socket_) {
    remove_socket_();
  } else {
    ::unlink(path_.c_str());
  }
}

MuxServer::Client* MuxServer::Find(uint64_t id) {
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second.get();
}

void MuxServer::OnAccepted(UniqueFd conn) {
  if (clients_.size() >= kMaxMuxClients) {
    spdlog::warn("mux: {} clients already; one refused", clients_.size());
    return;
  }
  if (Status peer = net::CheckPeerIsOwner(conn.get()); !peer.ok()) {
    // As mux.c: closed before the hello, and logged.
    spdlog::warn("mux: {}; refused", peer.error().message);
    return;
  }
  auto c = std::make_unique<Client>();
  c->id = next_id_++;
  c->fd = std::move(conn);
  uint64_t id = c->id;
  int fd = c->fd.get();
  clients_.emplace(id, std::move(c));
  loop_.Watch(fd, net::kReadable, [this, id](unsigned events) { OnClient(id, events); });
  // The server speaks first, as ssh's master does.
  Send(*Find(id), mux::EncodeHello());
  if (Client* cp = Find(id)) Flush(*cp);
}

bool MuxServer::ReadSome(Client& c) {
  char buf[16384];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  iovec iov{buf, sizeof buf};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(c.fd.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
      c.fds.emplace_back(fd);  // owned from here: closed if never used
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || c.fds.size() > kMaxQueuedFds) {
    spdlog::warn("mux: a client sent more descriptors than any request takes; dropped");
    return false;
  }
  if (n == 0) return false;
  c.in.append(buf, static_cast<size_t>(n));
  return true;
}

void MuxServer::OnClient(uint64_t id, unsigned events) {
  Client* c = Find(id);
  if (c == nullptr) return;
  if ((events & (net::kReadable | net::kHangup)) != 0) {
    if (!ReadSome(*c)) {
      Drop(id);
      return;
    }
    Process(*c);
    c = Find(id);
    if (c == nullptr) return;
  }
  Flush(*c);
}

bool MuxServer::TakeFds(Client& c, size_t count, std::vector<UniqueFd>* out) {
  // Each descriptor came with one byte of data (mm_send_fd); both must be in.
  if (c.fds.size() < count || c.in.size() < count) return false;
  c.in.erase(0, count);
  for (size_t i = 0; i < count; ++i) {
    out->push_back(std::move(c.fds.front()));
    c.fds.pop_front();
  }
  return true;
}

void MuxServer::Process(Client& c) {
  uint64_t id = c.id;
  // Bounded by what was read: every round consumes a packet or returns.
  for (int round = 0; round < 64; ++round) {
    Client* cp = Find(id);
    if (cp == nullptr || cp->closing) return;
    if (cp->waiting) {
      mux::ClientMessage m = std::move(*cp->waiting);
      cp->waiting.reset();
      uint32_t type =
          std::holds_alternative<mux::NewSession>(m) ? mux::kNewSession : mux::kNewStdioFwd;
      Dispatch(*cp, type, m);
      cp = Find(id);
      if (cp == nullptr || cp->waiting) return;  // still waiting for descriptors
      continue;
    }
    mux::Frame f = mux::ParseFrame(cp->in);
    if (f.state == mux::Frame::State::kNeedMore) return;
    if (f.state == mux::Frame::State::kTooLarge) {
      spdlog::warn("mux: a packet over {} bytes; client dropped", mux::kMaxPacketBytes);
      Drop(id);
      return;
    }
    std::string payload(f.payload);
    cp->in.erase(0, f.consumed);
    uint32_t unknown_rid = 0;
    auto message = mux::DecodeClientMessage(payload, &unknown_rid);
    if (!message.ok()) {
      spdlog::warn("mux: {}", message.error().message);
      // A malformed request of a known type ends the client, as mux.c does (stock ssh
      // would take a failure without its request id as out of sequence); an unknown type
      // gets MUX_S_FAILURE with its request id.
      if (!cp->hello || handlers_.count(mux::PayloadType(payload)) != 0) {
        Drop(id);
        return;
      }
      Send(*cp, mux::EncodeFailure(unknown_rid, message.error().message));
      continue;
    }
    uint32_t type = mux::PayloadType(payload);
    if (!cp->hello && type != mux::kMsgHello) {
      spdlog::warn("mux: a request before hello; client dropped");
      Drop(id);
      return;
    }
    if (Status valid = Validate(*message); !valid.ok()) {
      // Well-formed but not something we can serve: a failure with its request id keeps
      // stock ssh in sequence, and it prints the reason.
      spdlog::warn("mux: {}", valid.error().message);
      Send(*cp, mux::EncodeFailure(RequestIdOf(*message), valid.error().message));
      // A session's descriptors, and their bytes, follow its request and would be read as
      // the next packet: that client is done (ssh exits on the failure anyway).
      if (type == mux::kNewSession || type == mux::kNewStdioFwd) cp->closing = true;
      continue;
    }
    Dispatch(*cp, type, *message);
  }
}

void MuxServer::Dispatch(Client& c, uint32_t type, mux::ClientMessage& m) {
  uint64_t id = c.id;
  auto handler = handlers_.find(type);
  if (handler == handlers_.end()) {  // the codec decodes only types in the table
    Send(c, mux::EncodeFailure(RequestIdOf(m), "unsupported request"));
    return;
  }
  // The last resort: handlers do not throw, but one that does all the same (std::bad_alloc,
  // a bug) ends this client with a reason, never the daemon with every session and forward.
  std::string what;
  try {
    (this->*handler->second)(c, m);
    return;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  spdlog::error("mux: request 0x{:08x} failed: {}; client dropped", type, what);
  Client* cp = Find(id);
  if (cp == nullptr) return;
  Send(*cp, mux::EncodeFailure(RequestIdOf(m), "internal error: " + what));
  cp->closing = true;  // its state may be half-updated: answer, then close
  Flush(*cp);
}

void MuxServer::Send(Client& c, const std::string& payload) { c.out += mux::FramePacket(payload); }

void MuxServer::Flush(Client& c) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    Drop(c.id);
    return;
  }
  if (c.out.empty() && c.closing) {
    Drop(c.id);
    return;
  }
  loop_.SetInterest(c.fd.get(), c.out.empty() ? net::kReadable : net::kReadable | net::kWritable);
}

void MuxServer::Drop(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  loop_.Unwatch(c.fd.get());
  if (c.has_session) host_.EndSession(c.session);  // the client went away first
  clients_.erase(it);
}

void MuxServer::OnHello(Client& c, mux::ClientMessage& m) {
  const auto& hello = std::get<mux::Hello>(m);
  if (hello.version != mux::kMuxVersion) {
    spdlog::warn("mux: client speaks version {}, we speak {}; dropped", hello.version,
                 mux::kMuxVersion);
    Drop(c.id);
    return;
  }
  c.hello = true;
}

MuxHost::SessionEvents MuxServer::SessionEventsFor(uint64_t id, uint32_t rid,
                                                   std::shared_ptr<uint32_t> session_id,
                                                   bool exit_message) {
  MuxHost::SessionEvents events;
  events.started = [this, id, rid, session_id](bool ok, const std::string& error, bool tty_failed) {
    Client* cp = Find(id);
    if (cp == nullptr) return;
    if (!ok) {
      cp->has_session = false;
      Send(*cp, mux::EncodeFailure(rid, error));
      cp->closing = true;
    } else {
      Send(*cp, mux::EncodeSessionOpened(rid, *session_id));
      if (tty_failed) Send(*cp, mux::EncodeTtyAllocFail(*session_id));
    }
    Flush(*cp);
  };
  events.finished = [this, id, session_id, exit_message](uint32_t exit_value) {
    Client* cp = Find(id);
    if (cp == nullptr) return;
    cp->has_session = false;
    // ssh -W has no exit message: its client ends when its descriptors close.
    if (exit_message) Send(*cp, mux::EncodeExitMessage(*session_id, exit_value));
    cp->closing = true;
    Flush(*cp);
  };
  return events;
}

void MuxServer::StartClientSession(
    Client& c, mux::ClientMessage& m, uint32_t rid, size_t fd_count, bool exit_message,
    const std::function<uint32_t(std::vector<UniqueFd>&, MuxHost::SessionEvents)>& start) {
  std::vector<UniqueFd> fds;
  if (!TakeFds(c, fd_count, &fds)) {
    c.waiting = std::move(m);
    return;
  }
  if (c.has_session) {
    Send(c, mux::EncodeFailure(rid, "Multiple sessions not supported"));
    return;
  }
  uint64_t id = c.id;
  // The session's id is known once `start` returns; the callbacks run later.
  auto session_id = std::make_shared<uint32_t>(0);
  c.has_session = true;
  *session_id = start(fds, SessionEventsFor(id, rid, session_id, exit_message));
  if (Client* cp = Find(id)) cp->session = *session_id;
}

void MuxServer::OnNewSession(Client& c, mux::ClientMessage& m) {
  auto& request = std::get<mux::NewSession>(m);
  StartClientSession(c, m, request.request_id, 3, true,
                     [&](std::vector<UniqueFd>& fds, MuxHost::SessionEvents events) {
                       return host_.StartSession(request, std::move(fds[0]), std::move(fds[1]),
                                                 std::move(fds[2]), std::move(events));
                     });
}

void MuxServer::OnStdioForward(Client& c, mux::ClientMessage& m) {
  auto& request = std::get<mux::StdioForward>(m);
  StartClientSession(c, m, request.request_id, 2, false,
                     [&](std::vector<UniqueFd>& fds, MuxHost::SessionEvents events) {
                       return host_.StartStdioForward(request, std::move(fds[0]), std::move(fds[1]),
                                                      std::move(events));
                     });
}

void MuxServer::OnAliveCheck(Client& c, mux::ClientMessage& m) {
  Send(c, mux::EncodeAlive(RequestIdOf(m), host_.Pid()));
}

void MuxServer::OnTerminate(Client& c, mux::ClientMessage& m) {
  Send(c, mux::EncodeOk(RequestIdOf(m)));
  Flush(c);
  host_.Terminate();
}

void MuxServer::OnForward(Client& c, mux::ClientMessage& m) {
  const auto& request = std::get<mux::Forward>(m);
  uint32_t rid = request.request_id;
  if (request.close) {
    Status s = host_.CloseForward(request);
    Send(c, s.ok() ? mux::EncodeOk(rid) : mux::EncodeFailure(rid, s.error().message));
    return;
  }
  uint64_t id = c.id;
  bool remote_any_port = request.type == mux::kFwdRemote && request.listen_port == 0;
  host_.OpenForward(request, [this, id, rid, remote_any_port](Result<uint32_t> port) {
    Client* cp = Find(id);
    if (cp == nullptr) return;
    if (!port.ok()) {
      Send(*cp, mux::EncodeFailure(rid, port.error().message));
    } else if (remote_any_port) {
      Send(*cp, mux::EncodeRemotePort(rid, *port));
    } else {
      Send(*cp, mux::EncodeOk(rid));
    }
    Flush(*cp);
  });
}

void MuxServer::OnStopListening(Client& c, mux::ClientMessage& m) {
  Send(c, mux::EncodeOk(RequestIdOf(m)));
  StopListening();
}

void MuxServer::OnProxy(Client& c, mux::ClientMessage& m) {
  Send(c, mux::EncodeFailure(RequestIdOf(m), "proxy mode is not supported"));
}

}  // namespace tether::control
