#include "common/result.h"

#include <cstring>

namespace tether {

std::string Error::ToString() const {
  std::string s = step.empty() ? message : step + ": " + message;
  if (!hint.empty()) s += "\n  " + hint;
  return s;
}

const char* StepOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOther:
      return "";
    case ErrorCode::kResolve:
      return "resolve";
    case ErrorCode::kConnect:
      return "connect";
    case ErrorCode::kHandshake:
      return "handshake";
    case ErrorCode::kHostKey:
      return "host key";
    case ErrorCode::kAuth:
    case ErrorCode::kNeedsLogin:
      return "auth";
    case ErrorCode::kListen:
      return "listen";
    case ErrorCode::kPolicy:
      return "policy";
  }
  return "";
}

Error MakeError(ErrorCode code, std::string message, std::string hint, int sys_errno) {
  return Error{StepOf(code), std::move(message), std::move(hint), sys_errno, code};
}

Error MakeError(std::string step, std::string message, std::string hint, int sys_errno) {
  return Error{std::move(step), std::move(message), std::move(hint), sys_errno};
}

Error ErrnoError(ErrorCode code, std::string message, int sys_errno) {
  Error e = ErrnoError(std::string(StepOf(code)), std::move(message), sys_errno);
  e.code = code;
  return e;
}

Error ErrnoError(std::string step, std::string message, int sys_errno) {
  message += ": ";
  message += std::strerror(sys_errno);
  return Error{std::move(step), std::move(message), {}, sys_errno};
}

}  // namespace tether
