// Where a host's main connection stands, as `status` shows it.
#pragma once

namespace tether::daemon {

enum class LinkState {
  kUp,
  kReconnecting,  // lost, or not yet back: retried with backoff, listeners kept open
  kNeedsAuth,     // the last attempt was refused at the host key or the login: retried
  kNeedsLogin,    // the server wants a password, a code or a passphrase: not retried until
                  // a person logs in (`tether login`), the daemon runs it and relays prompts
};

// As `status` says it: "up", "reconnecting", "needs-auth", "needs-login"
// (docs/control-protocol.md).
const char* ToString(LinkState state);

}  // namespace tether::daemon
