#include "net/wake_pipe.h"

#include <fcntl.h>
#include <unistd.h>

namespace tether::net {

WakePipe::WakePipe() {
  int fds[2];
  if (::pipe(fds) != 0) return;
  for (int fd : fds) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  read_.Reset(fds[0]);
  write_.Reset(fds[1]);
}

void WakePipe::Wake() const {
  char byte = 1;
  [[maybe_unused]] ssize_t n = ::write(write_.get(), &byte, 1);  // full: a wake is pending
}

void WakePipe::Drain() const {
  char buf[64];
  while (::read(read_.get(), buf, sizeof buf) > 0) {
  }
}

}  // namespace tether::net
