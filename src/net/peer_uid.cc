#include "net/peer_uid.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace tether::net {

Result<uid_t> PeerUid(int fd) {
#if defined(SO_PEERCRED)
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoError("peer", "SO_PEERCRED", errno);
  }
  return cred.uid;
#else
  uid_t uid = 0;
  gid_t gid = 0;
  if (::getpeereid(fd, &uid, &gid) != 0) return ErrnoError("peer", "getpeereid", errno);
  return uid;
#endif
}

Status CheckPeerIsOwner(int fd) {
  auto uid = PeerUid(fd);
  if (!uid.ok()) return uid.take_error();
  const uid_t ours = ::geteuid();
  if (*uid == ours || *uid == 0) return Status::Ok();
  return MakeError("peer", "a process of uid " + std::to_string(*uid) + " connected; only uid " +
                               std::to_string(ours) + " (the owner) and root may");
}

}  // namespace tether::net
