#include "forward/pump_set.h"

namespace tether::forward {

void PumpSet::Entry::OnChannelActivity() {
  if (!dirty) {
    dirty = true;
    set->dirty_.push_back(id);
  }
}

PumpSet::~PumpSet() { Clear(); }

void PumpSet::Start(ssh_session session, NewStream stream) {
  StartWith(
      [&](ssh::ChannelObserver* observer) {
        return std::make_unique<ssh::Channel>(session, stream.target_host, stream.target_port,
                                              stream.target_path, stream.origin_host,
                                              stream.origin_port, observer);
      },
      std::move(stream.socket), std::move(stream.stats), std::move(stream.log_prefix),
      std::move(stream.hooks));
}

void PumpSet::Adopt(ssh_session session, ssh_channel channel, UniqueFd socket,
                    std::shared_ptr<ForwardStats> stats, std::string log_prefix) {
  StartWith(
      [&](ssh::ChannelObserver* observer) {
        return std::make_unique<ssh::Channel>(session, channel, observer);
      },
      std::move(socket), std::move(stats), std::move(log_prefix), PumpHooks{});
}

void PumpSet::StartWith(const ChannelMaker& make_channel, UniqueFd socket,
                        std::shared_ptr<ForwardStats> stats, std::string log_prefix,
                        PumpHooks hooks) {
  auto entry = std::make_unique<Entry>(this, next_id_++);
  uint64_t id = entry->id;
  int fd = socket.get();
  entry->pump = std::make_unique<Pump>(context_, std::move(socket), make_channel(entry.get()),
                                       std::move(stats), std::move(log_prefix), std::move(hooks));
  pumps_.emplace(id, std::move(entry));
  opening_.insert(id);
  context_.loop->Watch(fd, net::kNone, [this, id](unsigned) { Service(id); });
  Service(id);
}

void PumpSet::Service(uint64_t id) {
  auto it = pumps_.find(id);
  if (it == pumps_.end()) return;
  Pump& pump = *it->second->pump;
  pump.Service();
  if (!pump.opening()) opening_.erase(id);
  if (pump.done()) {
    opening_.erase(id);
    window_blocked_.erase(id);
    pumps_.erase(it);
    return;
  }
  if (pump.blocked_on_window()) {
    window_blocked_.insert(id);
  } else {
    window_blocked_.erase(id);
  }
}

void PumpSet::ServiceDirty() {
  // Opening channels learn of their confirmation only by being asked.
  std::vector<uint64_t> waiting(opening_.begin(), opening_.end());
  waiting.insert(waiting.end(), window_blocked_.begin(), window_blocked_.end());
  for (uint64_t id : waiting) Service(id);
  // Servicing one pump polls the session, which can mark others dirty: repeat, bounded.
  constexpr int kMaxPasses = 8;
  for (int pass = 0; pass < kMaxPasses && !dirty_.empty(); ++pass) {
    std::vector<uint64_t> batch;
    batch.swap(dirty_);
    for (uint64_t id : batch) {
      auto it = pumps_.find(id);
      if (it == pumps_.end()) continue;
      it->second->dirty = false;
      Service(id);
    }
  }
}

void PumpSet::MarkAllDirty() {
  for (auto& [id, entry] : pumps_) entry->OnChannelActivity();
}

void PumpSet::Clear() {
  pumps_.clear();
  opening_.clear();
  window_blocked_.clear();
  dirty_.clear();
}

}  // namespace tether::forward
