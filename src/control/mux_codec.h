// Pure encoding and decoding of mux protocol messages (mux_wire.h). No I/O: the server
// and our own client frame packets with ParseFrame, decode payloads into the structs
// below, and encode replies. Decoding never trusts a length: every read is checked, and a
// malformed payload is an error that names the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace tether::control::mux {

// --- framing

struct Frame {
  enum class State { kNeedMore, kDone, kTooLarge };
  State state = State::kNeedMore;
  size_t consumed = 0;  // kDone: the length field and the payload
  std::string_view payload;
};
// The first packet in `buffered`.
Frame ParseFrame(std::string_view buffered);
// Length-prefixed packet around `payload`.
std::string FramePacket(std::string_view payload);

// --- messages a client sends

struct Hello {
  uint32_t version = 0;
  std::vector<std::pair<std::string, std::string>> extensions;
};
inline constexpr std::string_view kForceSessionMark = "tether-session";

struct NewSession {
  uint32_t request_id = 0;
  bool want_tty = false;
  bool want_x11 = false;
  bool want_agent = false;
  bool subsystem = false;
  uint32_t escape_char = 0;
  std::string term;
  std::string command;           // "" for an interactive shell
  std::vector<std::string> env;  // "NAME=value"
  // A real session, never the resident runner (tether exec --session): said in the
  // request's reserved string, which OpenSSH's clients leave empty.
  bool force_session = false;
};
struct AliveCheck {
  uint32_t request_id = 0;
};
struct Terminate {
  uint32_t request_id = 0;
};
struct StopListening {
  uint32_t request_id = 0;
};
struct Proxy {
  uint32_t request_id = 0;
};
struct Forward {  // MUX_C_OPEN_FWD and MUX_C_CLOSE_FWD
  uint32_t request_id = 0;
  uint32_t type = 0;  // kFwdLocal, kFwdRemote, kFwdDynamic
  std::string listen_host;
  uint32_t listen_port = 0;  // kPortStreamLocal: listen_host is a path
  std::string connect_host;
  uint32_t connect_port = 0;  // kPortStreamLocal: connect_host is a path
  bool close = false;         // MUX_C_CLOSE_FWD
};
struct StdioForward {
  uint32_t request_id = 0;
  std::string host;
  uint32_t port = 0;  // kPortStreamLocal: host is a path
};

using ClientMessage = std::variant<Hello, NewSession, AliveCheck, Terminate, StopListening, Proxy,
                                   Forward, StdioForward>;

// Decodes one payload from a client. An unknown type is an error whose message names it;
// `unknown_request_id` then holds its request id when the payload has one (a reply can
// still be addressed).
Result<ClientMessage> DecodeClientMessage(std::string_view payload,
                                          uint32_t* unknown_request_id = nullptr);
// The type of a payload (0 when it is shorter than 4 bytes).
uint32_t PayloadType(std::string_view payload);

// --- messages the server sends (encoders return payloads, frame them with FramePacket)

std::string EncodeHello();
std::string EncodeOk(uint32_t request_id);
std::string EncodeFailure(uint32_t request_id, std::string_view reason);
std::string EncodePermissionDenied(uint32_t request_id, std::string_view reason);
std::string EncodeAlive(uint32_t request_id, uint32_t pid);
std::string EncodeSessionOpened(uint32_t request_id, uint32_t session_id);
std::string EncodeExitMessage(uint32_t session_id, uint32_t exit_value);
std::string EncodeTtyAllocFail(uint32_t session_id);
std::string EncodeRemotePort(uint32_t request_id, uint32_t port);

// --- for our own client (tether exec)

std::string EncodeClientHello();
std::string EncodeAliveCheck(uint32_t request_id);
std::string EncodeNewSession(const NewSession& request);

struct ServerMessage {
  uint32_t type = 0;
  uint32_t id = 0;     // request id or session id, as the type has it
  uint32_t value = 0;  // pid, session id, exit value or port
  std::string reason;  // failure and permission-denied
};
Result<ServerMessage> DecodeServerMessage(std::string_view payload);

}  // namespace tether::control::mux
