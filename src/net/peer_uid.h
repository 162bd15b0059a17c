// Who is at the other end of a local (unix) socket: the check that keeps HOST.sock and
// HOST.mux their owner's alone even when the socket file's mode or directory would let
// another account connect (a umask, a shared $TETHER_STATE_DIR, a file chmod-ed by
// hand). The same rule as OpenSSH's mux master (mux.c, mux_master_read_cb): the peer's
// effective uid must be ours, or root's.
//
// Platform seam: SO_PEERCRED on Linux, getpeereid(3) on the BSDs and macOS.
#pragma once

#include <sys/types.h>

#include "common/result.h"

namespace tether::net {

// The effective uid of the process that connected `fd` (a connected unix socket), as
// the kernel recorded it at connect time.
Result<uid_t> PeerUid(int fd);

// Ok when the peer of `fd` may use this process's local sockets (same effective uid, or
// root); otherwise an Error naming both uids (step "peer"), for the log.
Status CheckPeerIsOwner(int fd);

}  // namespace tether::net
