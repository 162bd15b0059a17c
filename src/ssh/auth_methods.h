// Which login methods tether tries, in what order, as ssh does (sshconnect2.c): the
// order of PreferredAuthentications, else publickey, keyboard-interactive, password; a
// method turned off in the configuration is never tried. Pure: no session here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/ssh_config.h"

namespace tether::ssh {

enum class AuthMethod { kPublicKey, kKeyboardInteractive, kPassword };

// The protocol's name: "publickey", "keyboard-interactive", "password".
std::string_view AuthMethodName(AuthMethod method);

// The methods `host` lets us try, in the order to try them. Names in
// PreferredAuthentications that tether does not speak (gssapi-with-mic, hostbased) are
// skipped, and a name given twice counts once.
std::vector<AuthMethod> AuthOrder(const config::HostConfig& host);

// Why `method` is not in AuthOrder(host) ("PasswordAuthentication is no", "not in
// PreferredAuthentications"), or "" when it is.
std::string WhyNotInOrder(const config::HostConfig& host, AuthMethod method);

}  // namespace tether::ssh
