#include "control/mux_codec.h"

#include <cstdio>

#include "control/mux_wire.h"

namespace tether::control::mux {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U32(uint32_t* v) {
    if (in_.size() < 4) return false;
    *v = (static_cast<uint32_t>(static_cast<uint8_t>(in_[0])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(in_[1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(in_[2])) << 8) |
         static_cast<uint32_t>(static_cast<uint8_t>(in_[3]));
    in_.remove_prefix(4);
    return true;
  }
  bool Bool(bool* v) {
    uint32_t u;
    if (!U32(&u)) return false;
    *v = u != 0;
    return true;
  }
  bool String(std::string* s) {
    uint32_t n;
    if (!U32(&n) || n > in_.size()) return false;
    s->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  // A C string for ssh: no NUL inside.
  bool CString(std::string* s) { return String(s) && s->find('\0') == std::string::npos; }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

class Writer {
 public:
  Writer& U32(uint32_t v) {
    out_ += static_cast<char>(v >> 24);
    out_ += static_cast<char>(v >> 16);
    out_ += static_cast<char>(v >> 8);
    out_ += static_cast<char>(v);
    return *this;
  }
  Writer& String(std::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s);
    return *this;
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

// mux.c calls a forward port above 65535 that is not kPortStreamLocal malformed (for a stdio
// forward only one above INT_MAX, but ssh -W never sends more than 65535): it must not reach
// a listener or a channel truncated to 16 bits.
bool ValidPort(uint32_t port) { return port <= 65535 || port == kPortStreamLocal; }

Error Malformed(const char* what) { return MakeError("mux", std::string("malformed ") + what); }

}  // namespace

Frame ParseFrame(std::string_view buffered) {
  Frame f;
  uint32_t len;
  Reader r(buffered);
  if (!r.U32(&len)) return f;
  if (len > kMaxPacketBytes) {
    f.state = Frame::State::kTooLarge;
    return f;
  }
  if (buffered.size() - 4 < len) return f;
  f.state = Frame::State::kDone;
  f.consumed = 4 + len;
  f.payload = buffered.substr(4, len);
  return f;
}

std::string FramePacket(std::string_view payload) {
  Writer w;
  w.String(payload);
  return w.Take();
}

uint32_t PayloadType(std::string_view payload) {
  uint32_t type = 0;
  Reader r(payload);
  r.U32(&type);
  return type;
}

Result<ClientMessage> DecodeClientMessage(std::string_view payload, uint32_t* unknown_request_id) {
  Reader r(payload);
  uint32_t type;
  if (!r.U32(&type)) return Malformed("packet: no type");
  switch (type) {
    case kMsgHello: {
      Hello h;
      if (!r.U32(&h.version)) return Malformed("hello");
      // Bounded by the packet's size: each pair consumes at least 8 bytes.
      while (!r.empty()) {
        std::string name, value;
        // mux.c: the name is a C string, the value any bytes.
        if (!r.CString(&name) || !r.String(&value)) return Malformed("hello extension");
        h.extensions.emplace_back(std::move(name), std::move(value));
      }
      return ClientMessage{std::move(h)};
    }
    case kNewSession: {
      NewSession s;
      std::string reserved;
      if (!r.U32(&s.request_id) || !r.String(&reserved) || !r.Bool(&s.want_tty) ||
          !r.Bool(&s.want_x11) || !r.Bool(&s.want_agent) || !r.Bool(&s.subsystem) ||
          !r.U32(&s.escape_char) || !r.CString(&s.term) || !r.CString(&s.command)) {
        return Malformed("new-session request");
      }
      s.force_session = reserved == kForceSessionMark;
      while (!r.empty()) {
        std::string var;
        if (!r.CString(&var)) return Malformed("new-session environment");
        if (s.env.size() < kMaxEnvStrings) s.env.push_back(std::move(var));
      }
      return ClientMessage{std::move(s)};
    }
    case kAliveCheck: {
      AliveCheck a;
      if (!r.U32(&a.request_id)) return Malformed("alive check");
      return ClientMessage{a};
    }
    case kTerminate: {
      Terminate t;
      if (!r.U32(&t.request_id)) return Malformed("terminate");
      return ClientMessage{t};
    }
    case kStopListening: {
      StopListening s;
      if (!r.U32(&s.request_id)) return Malformed("stop-listening");
      return ClientMessage{s};
    }
    case kProxy: {
      Proxy p;
      if (!r.U32(&p.request_id)) return Malformed("proxy request");
      return ClientMessage{p};
    }
    case kOpenFwd:
    case kCloseFwd: {
      Forward f;
      f.close = type == kCloseFwd;
      if (!r.U32(&f.request_id) || !r.U32(&f.type) || !r.CString(&f.listen_host) ||
          !r.U32(&f.listen_port) || !r.CString(&f.connect_host) || !r.U32(&f.connect_port) ||
          !ValidPort(f.listen_port) || !ValidPort(f.connect_port)) {
        return Malformed("forward request");
      }
      return ClientMessage{std::move(f)};
    }
    case kNewStdioFwd: {
      StdioForward s;
      std::string reserved;
      if (!r.U32(&s.request_id) || !r.String(&reserved) || !r.CString(&s.host) || !r.U32(&s.port) ||
          !ValidPort(s.port)) {
        return Malformed("stdio-forward request");
      }
      return ClientMessage{std::move(s)};
    }
    default: {
      uint32_t rid = 0;
      if (unknown_request_id != nullptr && r.U32(&rid)) *unknown_request_id = rid;
      char hex[16];
      std::snprintf(hex, sizeof hex, "0x%08x", type);
      return MakeError("mux", std::string("unsupported request ") + hex);
    }
  }
}

std::string EncodeHello() { return Writer().U32(kMsgHello).U32(kMuxVersion).Take(); }
std::string EncodeOk(uint32_t request_id) { return Writer().U32(kOk).U32(request_id).Take(); }
std::string EncodeFailure(uint32_t request_id, std::string_view reason) {
  return Writer().U32(kFailure).U32(request_id).String(reason).Take();
}
std::string EncodePermissionDenied(uint32_t request_id, std::string_view reason) {
  return Writer().U32(kPermissionDenied).U32(request_id).String(reason).Take();
}
std::string EncodeAlive(uint32_t request_id, uint32_t pid) {
  return Writer().U32(kAlive).U32(request_id).U32(pid).Take();
}
std::string EncodeSessionOpened(uint32_t request_id, uint32_t session_id) {
  return Writer().U32(kSessionOpened).U32(request_id).U32(session_id).Take();
}
std::string EncodeExitMessage(uint32_t session_id, uint32_t exit_value) {
  return Writer().U32(kExitMessage).U32(session_id).U32(exit_value).Take();
}
std::string EncodeTtyAllocFail(uint32_t session_id) {
  return Writer().U32(kTtyAllocFail).U32(session_id).Take();
}
std::string EncodeRemotePort(uint32_t request_id, uint32_t port) {
  return Writer().U32(kRemotePort).U32(request_id).U32(port).Take();
}

std::string EncodeClientHello() { return EncodeHello(); }
std::string EncodeAliveCheck(uint32_t request_id) {
  return Writer().U32(kAliveCheck).U32(request_id).Take();
}
std::string EncodeNewSession(const NewSession& s) {
  Writer w;
  w.U32(kNewSession)
      .U32(s.request_id)
      .String(s.force_session ? std::string(kForceSessionMark) : std::string())
      .U32(s.want_tty)
      .U32(s.want_x11)
      .U32(s.want_agent)
      .U32(s.subsystem)
      .U32(s.escape_char)
      .String(s.term)
      .String(s.command);
  for (const auto& e : s.env) w.String(e);
  return w.Take();
}

Result<ServerMessage> DecodeServerMessage(std::string_view payload) {
  Reader r(payload);
  ServerMessage m;
  if (!r.U32(&m.type)) return Malformed("reply: no type");
  bool ok = true;
  switch (m.type) {
    case kMsgHello:
      ok = r.U32(&m.value);  // the version; extensions ignored
      break;
    case kOk:
    case kTtyAllocFail:
      ok = r.U32(&m.id);
      break;
    case kFailure:
    case kPermissionDenied:
      ok = r.U32(&m.id) && r.String(&m.reason);
      break;
    case kAlive:
    case kSessionOpened:
    case kExitMessage:
    case kRemotePort:
      ok = r.U32(&m.id) && r.U32(&m.value);
      break;
    default:
      return MakeError("mux", "unexpected reply type");
  }
  if (!ok) return Malformed("reply");
  return m;
}

}  // namespace tether::control::mux
