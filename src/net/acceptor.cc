#include "net/acceptor.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "net/socket.h"

namespace tether::net {
namespace {

// Errors of the one connection being accepted (Linux passes a pending network error of the
// new socket on through accept): that connection is gone, the next may be fine.
bool ConnectionError(int error) {
  switch (error) {
    case ECONNABORTED:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
#ifdef ENONET
    case ENONET:
#endif
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETDOWN:
    case ENETUNREACH:
    case EPERM:  // a firewall rule refused it
      return true;
    default:
      return false;
  }
}

}  // namespace

Acceptor::Acceptor(EventLoop& loop, int listen_fd, std::string log_name, int burst,
                   OnConnection on_connection)
    : loop_(loop),
      fd_(listen_fd),
      log_name_(std::move(log_name)),
      burst_(burst),
      on_connection_(std::move(on_connection)) {
  loop_.Watch(fd_, kReadable, [this](unsigned) { OnReadable(); });
}

Acceptor::~Acceptor() {
  if (resume_timer_ != 0) loop_.CancelTimer(resume_timer_);
  loop_.Unwatch(fd_);
}

void Acceptor::OnReadable() {
  for (int i = 0; i < burst_; ++i) {
    Result<UniqueFd> conn = Accept(fd_);
    if (!conn.ok()) {
      int error = conn.error().sys_errno;
      if (ConnectionError(error)) continue;
      Pause(error);
      return;
    }
    if (!conn->valid()) return;  // nothing more is queued
    warned_ = false;             // descriptors again: the next shortage is news
    on_connection_(std::move(*conn));
  }
}

void Acceptor::Pause(int error) {
  ++pauses_;
  if (!warned_) {
    spdlog::warn("[{}] cannot accept: {}; pausing {} ms at a time until it can", log_name_,
                 std::strerror(error), kAcceptPause.count());
    warned_ = true;
  }
  loop_.SetInterest(fd_, kNone);
  resume_timer_ = loop_.AddTimer(kAcceptPause, [this] { Resume(); });
}

void Acceptor::Resume() {
  resume_timer_ = 0;
  loop_.SetInterest(fd_, kReadable);
}

}  // namespace tether::net
