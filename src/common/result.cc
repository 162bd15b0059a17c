#include "common/result.h"

#include <cstring>

namespace tether {

std::string Error::ToString() const {
  std::string s = step.empty() ? message : step + ": " + message;
  if (!hint.empty()) s += "\n  " + hint;
  return s;
}

Error MakeError(std::string step, std::string message, std::string hint, int sys_errno) {
  return Error{std::move(step), std::move(message), std::move(hint), sys_errno};
}

Error ErrnoError(std::string step, std::string message, int sys_errno) {
  message += ": ";
  message += std::strerror(sys_errno);
  return Error{std::move(step), std::move(message), {}, sys_errno};
}

}  // namespace tether
