// The resident runner's wire: what the daemon and `tether-agent --runner` say on one
// direct-streamlocal channel per command. Every message is a frame:
//
//   u8 type | u32 payload length (big-endian) | payload
//
//   daemon -> runner   kRun (once, first): strings (u32 length + bytes): the command line,
//                      then NAME=value variables to add
//                      kStdin: bytes for the command's stdin; kStdinEof: no more
//   runner -> daemon   kStarted (payload: the pid in decimal), or kRefused (why: the
//                      daemon runs the command in a session of its own instead)
//                      kStdout, kStderr: the command's output
//                      kExit: u32, the exit status (128+n for a signal n), last
//
// The channel closing early means the other side is gone: for the runner, the client
// (the command's process group gets SIGHUP, as from sshd); for the daemon, the runner.
// A frame's payload is at most kMaxRunnerPayload; anything else is a broken peer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::runner {

// Said in the greeting line, "tether-runner 1 /path/to/socket".
inline constexpr int kProtocolVersion = 1;
inline constexpr std::string_view kGreeting = "tether-runner";

enum class Frame : uint8_t {
  kRun = 'R',
  kStdin = 'i',
  kStdinEof = 'e',
  kStarted = 'S',
  kRefused = 'N',
  kStdout = 'o',
  kStderr = 'x',
  kExit = 'X',
};

inline constexpr size_t kFrameHeader = 5;
// A command line as long as Linux takes in one argument (MAX_ARG_STRLEN, 128 KiB) with its
// variables fits; data frames are far smaller (kMaxDataFrame).
inline constexpr size_t kMaxRunnerPayload = 1u << 20;
inline constexpr size_t kMaxDataFrame = 64u << 10;

// Appends one frame to `out`.
void AppendFrame(std::string& out, Frame type, std::string_view payload);

struct RunRequest {
  std::string command;
  std::vector<std::string> env;  // NAME=value
};
std::string EncodeRun(const RunRequest& request);
std::optional<RunRequest> DecodeRun(std::string_view payload);
std::string EncodeExit(uint32_t status);
std::optional<uint32_t> DecodeExit(std::string_view payload);

// Frames out of a byte stream, bounded: at most one partial frame is held.
class FrameReader {
 public:
  enum class Result { kFrame, kNeedMore, kBroken };
  void Feed(const char* data, size_t len) { buf_.append(data, len); }
  // The next whole frame; kBroken for an unknown type or an oversized length (the peer
  // is not speaking this protocol: close it).
  Result Next(Frame* type, std::string* payload);
  // Bytes held that are not yet a whole frame.
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  size_t pos_ = 0;
};

// What a command's end says as a shell would: its status, or 128+n for a signal n.
uint32_t ExitValueOf(int wait_status);

}  // namespace tether::runner
