#include "ssh/server_opens.h"

#include <libssh/server.h>  // the accessors of a channel open live here, though clients use them

#include "common/log.h"

namespace tether::ssh {

ServerOpens::ServerOpens(Wanted wanted, std::string log_prefix)
    : wanted_(std::move(wanted)), log_prefix_(std::move(log_prefix)) {}

ServerOpens::~ServerOpens() { Clear(); }

void ServerOpens::Attach(ssh_session session) {
  Clear();
  if (session != nullptr) ssh_set_message_callback(session, &ServerOpens::OnMessage, this);
}

std::vector<ServerOpens::Open> ServerOpens::Take() {
  std::vector<Open> batch;
  batch.swap(queue_);
  return batch;
}

void ServerOpens::Drop(Open& open) {
  if (open.channel != nullptr) ssh_channel_free(open.channel);
  open.channel = nullptr;
}

void ServerOpens::Clear() {
  for (auto& open : queue_) Drop(open);
  queue_.clear();
}

int ServerOpens::OnMessage(ssh_session, ssh_message message, void* self_ptr) {
  auto* self = static_cast<ServerOpens*>(self_ptr);
  if (ssh_message_type(message) != SSH_REQUEST_CHANNEL_OPEN ||
      ssh_message_subtype(message) != SSH_CHANNEL_FORWARDED_TCPIP) {
    return 1;  // libssh refuses it (agent, X11, anything we did not ask for)
  }
  const char* address = ssh_message_channel_request_open_destination(message);
  int port = ssh_message_channel_request_open_destination_port(message);
  if (!self->wanted_(address ? address : "", static_cast<uint16_t>(port))) {
    spdlog::warn("[{}] the server opened a connection for {}:{}, which we do not forward: refused",
                 self->log_prefix_, address ? address : "", port);
    return 1;
  }
  ssh_channel channel = ssh_message_channel_request_open_reply_accept(message);
  if (channel == nullptr) return 0;
  const char* origin = ssh_message_channel_request_open_originator(message);
  self->queue_.push_back(
      Open{channel, address ? address : "", static_cast<uint16_t>(port), origin ? origin : "",
           static_cast<uint16_t>(ssh_message_channel_request_open_originator_port(message))});
  return 0;
}

}  // namespace tether::ssh
