#include "daemon/link_state.h"

namespace tether::daemon {

const char* ToString(LinkState state) {
  switch (state) {
    case LinkState::kUp:
      return "up";
    case LinkState::kReconnecting:
      return "reconnecting";
    case LinkState::kNeedsAuth:
      return "needs-auth";
    case LinkState::kNeedsLogin:
      return "needs-login";
  }
  return "";
}

}  // namespace tether::daemon
