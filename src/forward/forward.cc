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

}  // namespace tether::forward
