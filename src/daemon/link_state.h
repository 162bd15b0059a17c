// Where a host's main connection stands, as `status` shows it.
#pragma once

namespace tether::daemon {

enum class LinkState {
  kUp,
  kReconnecting,  // lost, or not yet back: retried with backoff, listeners kept open
  kNeedsAuth,     // the last attempt needs a passphrase, a code or a host key: `tether up`
};

// As `status` says it: "up", "reconnecting", "needs-auth" (docs/control-protocol.md).
const char* ToString(LinkState state);

}  // namespace tether::daemon
