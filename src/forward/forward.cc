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

}  // namespace tether::forward
