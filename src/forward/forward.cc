#include "forward/forward.h"

namespace tether::forward {

const char* ForwardKindName(config::ForwardKind kind) {
  switch (kind) {
    case config::ForwardKind::kLocal:
      return "local";
    case config::ForwardKind::kRemote:
      return "remote";
    case config::ForwardKind::kDynamic:
      return "dynamic";
  }
  return "local";
}

const char* ToString(ForwardState state) {
  switch (state) {
    case ForwardState::kWaitingForLink:
      return "waiting for the link";
    case ForwardState::kRequesting:
      return "requesting";
    case ForwardState::kListening:
      return "listening";
    case ForwardState::kRetrying:
      return "retrying";
    case ForwardState::kStopped:
      return "stopped";
  }
  return "";
}

const char* ToString(Access access) {
  switch (access) {
    case Access::kNotApplicable:
      return "";
    case Access::kAnyone:
      return "anyone";
    case Access::kChecking:
      return "checking";
    case Access::kOwner:
      return "owner";
    case Access::kToken:
      return "token";
    case Access::kNobody:
      return "nobody";
  }
  return "";
}

}  // namespace tether::forward
