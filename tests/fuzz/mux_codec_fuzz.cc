// libFuzzer target for the OpenSSH mux protocol codec (src/control/mux_codec.cc).
//
// Built by tests/CMakeLists.txt: with libFuzzer by scripts/fuzz.sh, or replayed over
// tests/fuzz/corpus/mux_codec/ as the ctest fuzz.mux_codec (label fuzz).
//
// The input is read twice: as one payload, and as a stream of framed packets the way the
// server reads its socket. Besides memory safety it checks what the server relies on:
// a decoded request holds no NUL where ssh reads a C string, no port that is neither TCP
// nor kPortStreamLocal, no more environment than kMaxEnvStrings; a decoded NewSession
// re-encodes to a payload that decodes equal; a frame is never longer than the input or
// kMaxPacketBytes and re-frames to the bytes it came from.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>

#include "control/mux_codec.h"
#include "control/mux_wire.h"

namespace {

using namespace tether::control::mux;

void Require(bool ok) {
  if (!ok) std::abort();
}

bool CString(const std::string& s) { return s.find('\0') == std::string::npos; }

bool Port(uint32_t port) { return port <= 65535 || port == kPortStreamLocal; }

auto Fields(const NewSession& m) {
  return std::tie(m.request_id, m.want_tty, m.want_x11, m.want_agent, m.subsystem, m.escape_char,
                  m.term, m.command, m.env);
}

void CheckClientMessage(std::string_view payload) {
  uint32_t rid = 0;
  auto message = DecodeClientMessage(payload, &rid);
  (void)DecodeClientMessage(payload);  // and without somewhere to put an unknown's id
  if (!message.ok()) return;
  Require(payload.size() >= 4);
  if (const auto* hello = std::get_if<Hello>(&*message)) {
    for (const auto& [name, value] : hello->extensions) Require(CString(name));
  } else if (const auto* session = std::get_if<NewSession>(&*message)) {
    Require(CString(session->term) && CString(session->command));
    Require(session->env.size() <= kMaxEnvStrings);
    for (const std::string& var : session->env) Require(CString(var));
    auto again = DecodeClientMessage(EncodeNewSession(*session));
    Require(again.ok());
    const auto* same = std::get_if<NewSession>(&*again);
    Require(same != nullptr && Fields(*same) == Fields(*session));
  } else if (const auto* forward = std::get_if<Forward>(&*message)) {
    Require(CString(forward->listen_host) && CString(forward->connect_host));
    Require(Port(forward->listen_port) && Port(forward->connect_port));
    Require(forward->close == (PayloadType(payload) == kCloseFwd));
  } else if (const auto* stdio = std::get_if<StdioForward>(&*message)) {
    Require(CString(stdio->host) && Port(stdio->port));
  }
}

void CheckServerMessage(std::string_view payload) {
  auto reply = DecodeServerMessage(payload);
  if (reply.ok()) Require(reply->type == PayloadType(payload));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckClientMessage(input);
  CheckServerMessage(input);

  std::string_view stream = input;
  for (;;) {
    Frame frame = ParseFrame(stream);
    if (frame.state != Frame::State::kDone) {
      Require(frame.consumed == 0);
      break;
    }
    Require(frame.consumed == frame.payload.size() + 4 && frame.consumed <= stream.size());
    Require(frame.payload.size() <= kMaxPacketBytes);
    Require(FramePacket(frame.payload) == stream.substr(0, frame.consumed));
    CheckClientMessage(frame.payload);
    CheckServerMessage(frame.payload);
    stream.remove_prefix(frame.consumed);
  }
  return 0;
}
