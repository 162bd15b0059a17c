#include "common/runner_wire.h"

#include <sys/wait.h>

namespace tether::runner {
namespace {

void PutU32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

uint32_t GetU32(const char* p) {
  auto u = [p](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return u(0) << 24 | u(1) << 16 | u(2) << 8 | u(3);
}

bool KnownType(uint8_t t) {
  switch (static_cast<Frame>(t)) {
    case Frame::kRun:
    case Frame::kStdin:
    case Frame::kStdinEof:
    case Frame::kStarted:
    case Frame::kRefused:
    case Frame::kStdout:
    case Frame::kStderr:
    case Frame::kExit:
      return true;
  }
  return false;
}

}  // namespace

void AppendFrame(std::string& out, Frame type, std::string_view payload) {
  out.push_back(static_cast<char>(type));
  PutU32(out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
}

std::string EncodeRun(const RunRequest& request) {
  std::string out;
  PutU32(out, static_cast<uint32_t>(request.command.size()));
  out += request.command;
  for (const auto& var : request.env) {
    PutU32(out, static_cast<uint32_t>(var.size()));
    out += var;
  }
  return out;
}

std::optional<RunRequest> DecodeRun(std::string_view payload) {
  std::vector<std::string> strings;
  size_t pos = 0;
  while (pos < payload.size()) {
    if (payload.size() - pos < 4) return std::nullopt;
    uint32_t len = GetU32(payload.data() + pos);
    pos += 4;
    if (len > payload.size() - pos) return std::nullopt;
    strings.emplace_back(payload.substr(pos, len));
    pos += len;
  }
  if (strings.empty() || strings[0].empty()) return std::nullopt;
  RunRequest r;
  r.command = std::move(strings[0]);
  for (size_t i = 1; i < strings.size(); ++i) {
    // NAME=value with a name, and no NUL anywhere: execve could not pass it.
    const std::string& v = strings[i];
    if (v.find('=') == std::string::npos || v[0] == '=' || v.find('\0') != std::string::npos) {
      return std::nullopt;
    }
    r.env.push_back(v);
  }
  if (r.command.find('\0') != std::string::npos) return std::nullopt;
  return r;
}

std::string EncodeExit(uint32_t status) {
  std::string out;
  PutU32(out, status);
  return out;
}

std::optional<uint32_t> DecodeExit(std::string_view payload) {
  if (payload.size() != 4) return std::nullopt;
  return GetU32(payload.data());
}

FrameReader::Result FrameReader::Next(Frame* type, std::string* payload) {
  if (buf_.size() - pos_ < kFrameHeader) return Result::kNeedMore;
  const char* p = buf_.data() + pos_;
  auto t = static_cast<uint8_t>(p[0]);
  uint32_t len = GetU32(p + 1);
  if (!KnownType(t) || len > kMaxRunnerPayload) return Result::kBroken;
  if (buf_.size() - pos_ - kFrameHeader < len) return Result::kNeedMore;
  *type = static_cast<Frame>(t);
  payload->assign(p + kFrameHeader, len);
  pos_ += kFrameHeader + len;
  // Compact once what was taken is most of the buffer: each byte moves O(1) times.
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return Result::kFrame;
}

uint32_t ExitValueOf(int wait_status) {
  if (WIFEXITED(wait_status)) return static_cast<uint32_t>(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return 128u + static_cast<uint32_t>(WTERMSIG(wait_status));
  return 255;
}

}  // namespace tether::runner
