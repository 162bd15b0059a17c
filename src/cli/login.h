// A person's login for a running daemon whose reconnect needs a password, a code or a
// passphrase (state "needs-login"): the daemon dials and relays each of the server's
// prompts here over its control socket (daemon/login_relay.h).
#pragma once

#include <string>

#include "daemon/state_dir.h"
#include "ssh/prompter.h"

namespace tether::cli {

// Runs the login of `alias`'s daemon, asking `prompter`; prints how it ended. Exit status:
// 0 when the link is up (already, or now), 1 otherwise.
int LoginThroughDaemon(const daemon::StateDir& state, const std::string& alias,
                       ssh::Prompter& prompter);

}  // namespace tether::cli
