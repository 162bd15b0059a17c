#include "ssh/link.h"

#include "net/socket.h"

namespace tether::ssh {

Result<std::unique_ptr<Link>> Link::Open(net::EventLoop& loop, std::unique_ptr<Session> session,
                                         const Options& options, std::function<void()> on_input) {
  ssh_event event = ssh_event_new();
  if (event == nullptr) return MakeError("link", "cannot set up the session's event");
  session->SetNonBlocking();
  if (options.read_ahead) session->EnableReadAhead();
  if (options.dead_after.count() > 0) {
    net::SetSendTimeout(session->fd(), options.dead_after);
    net::SetUserTimeout(session->fd(), options.dead_after);
  }
  std::unique_ptr<Link> link(new Link(loop, std::move(session), event));
  Link* self = link.get();
  // The handler is held by the loop while it runs: `on_input` may destroy the link.
  loop.Watch(self->fd_, net::kReadable, [self, on_input = std::move(on_input)](unsigned) {
    self->Drain();
    on_input();
  });
  return link;
}

Link::Link(net::EventLoop& loop, std::unique_ptr<Session> session, ssh_event event)
    : loop_(loop), session_(std::move(session)), event_(event), fd_(session_->fd()) {
  ssh_event_add_session(event_, session_->raw());
  ssh_set_counters(session_->raw(), &counter_, nullptr);
}

Link::~Link() {
  loop_.Unwatch(fd_);
  ssh_set_counters(session_->raw(), nullptr, nullptr);
  ssh_event_remove_session(event_, session_->raw());
  ssh_event_free(event_);
}

std::string Link::EndReason() const {
  std::string why = session_->LastError();
  return why.empty() ? "the server closed the connection" : why;
}

void Link::Drain() { session_->Drain(event_, kMaxSessionPollsPerWake); }

void Link::UpdateWriteInterest() {
  bool want = session_->WantsWrite();
  if (want == wants_write_) return;
  wants_write_ = want;
  loop_.SetInterest(fd_, want ? net::kReadable | net::kWritable : net::kReadable);
}

}  // namespace tether::ssh
