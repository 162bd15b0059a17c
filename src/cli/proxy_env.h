// The proxy variables for the server proxy of a running daemon, and how each shell sets
// them. Shared by `tether env` and `tether run`.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "daemon/state_dir.h"

namespace tether::cli {

// Name and value pairs, in the order they are printed.
using Variables = std::vector<std::pair<std::string, std::string>>;

// Asks the daemon of `host` for its server proxy. Errors say how to start one.
Result<Variables> FetchProxyVariables(const daemon::StateDir& state, const std::string& host);
// The variables for a server proxy on 127.0.0.1:port, with user and token unless open.
Variables ProxyVariables(uint16_t port, const std::string& user, const std::string& token);

// The variables for local programs pointing at the host's first -D port (which speaks
// SOCKS5 and HTTP CONNECT): a compute node's tools reach the internet through the jump
// server or the server behind it. Errors say how to add a -D forward.
Result<Variables> FetchLocalProxyVariables(const daemon::StateDir& state, const std::string& host);

// `export NAME='value'` lines (sh, bash, zsh) or `set -gx NAME 'value'` (fish), values
// single-quoted.
std::string FormatExports(const Variables& vars, const std::string& shell);
// The same as one line of POSIX shell for a remote command prefix: `export A='x' B='y'; `.
std::string ShellPrefix(const Variables& vars);

}  // namespace tether::cli
