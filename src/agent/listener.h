// The agent's listening sockets: TCP on an address of --listen, or a unix socket (the
// default, runtime_dir.h). Both close-on-exec, so no child (the lease command) keeps them.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "agent/listen.h"
#include "common/result.h"
#include "common/unique_fd.h"

namespace tether::agent {

// A numeric address (or "localhost", taken as 127.0.0.1: a static binary resolves no
// names). SO_REUSEADDR so a restart binds at once; never SO_REUSEPORT, which would let a
// second agent bind the same port and take a random share of the connections (with a
// different token) instead of failing loudly. `bound_port` gets the port (the chosen
// one for port 0).
Result<UniqueFd> ListenTcp(const ListenAddress& address, int* bound_port);

// A unix socket file, mode 0600, at `path`, whose directory the caller has checked
// (runtime_dir.h). A socket left there by an agent that died is replaced; one that
// answers (a running agent) is EADDRINUSE; anything else at the path is refused.
// `file` gets the socket file's identity (device and inode) for RemoveUnixSocket.
Result<UniqueFd> ListenUnix(const std::string& path, uid_t uid, struct stat* file);

// Removes the socket file at `path` if it is still the one ListenUnix made (a newer agent
// may have replaced it).
void RemoveUnixSocket(const std::string& path, const struct stat& file);

}  // namespace tether::agent
