// OpenSSH's multiplexing protocol, version 4 (openssh-portable PROTOCOL.mux and mux.c):
// message types and constants (namespace control::mux: the mux protocol has names such as
// Forward and Hello that would be ambiguous beside the JSON-lines control protocol). Every packet
// is a uint32 length, then the payload, whose first uint32 is the type; integers are big-endian,
// strings a uint32 length and bytes. Where PROTOCOL.mux and mux.c disagree, mux.c is what stock ssh
// speaks and what we follow: flags are uint32, and the stdio forward's port is a uint32, not a
// string.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::control::mux {

inline constexpr uint32_t kMuxVersion = 4;

inline constexpr uint32_t kMsgHello = 0x00000001;
inline constexpr uint32_t kNewSession = 0x10000002;
inline constexpr uint32_t kAliveCheck = 0x10000004;
inline constexpr uint32_t kTerminate = 0x10000005;
inline constexpr uint32_t kOpenFwd = 0x10000006;
inline constexpr uint32_t kCloseFwd = 0x10000007;
inline constexpr uint32_t kNewStdioFwd = 0x10000008;
inline constexpr uint32_t kStopListening = 0x10000009;
inline constexpr uint32_t kProxy = 0x1000000f;

inline constexpr uint32_t kOk = 0x80000001;
inline constexpr uint32_t kPermissionDenied = 0x80000002;
inline constexpr uint32_t kFailure = 0x80000003;
inline constexpr uint32_t kExitMessage = 0x80000004;
inline constexpr uint32_t kAlive = 0x80000005;
inline constexpr uint32_t kSessionOpened = 0x80000006;
inline constexpr uint32_t kRemotePort = 0x80000007;
inline constexpr uint32_t kTtyAllocFail = 0x80000008;

inline constexpr uint32_t kFwdLocal = 1;
inline constexpr uint32_t kFwdRemote = 2;
inline constexpr uint32_t kFwdDynamic = 3;
// A port of 0xfffffffe (-2) says the host field is a unix socket path.
inline constexpr uint32_t kPortStreamLocal = 0xfffffffe;
// "No escape character" in a new-session request.
inline constexpr uint32_t kNoEscapeChar = 0xffffffff;

// Largest packet we accept: a command line and its environment fit with room to spare
// (mux.c allows 256 KiB as well); anything longer is refused and the client dropped.
inline constexpr size_t kMaxPacketBytes = 256u << 10;
// Environment strings a new session may carry (mux.c: 4096).
inline constexpr size_t kMaxEnvStrings = 4096;

}  // namespace tether::control::mux
