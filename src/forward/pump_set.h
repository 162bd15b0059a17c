// PumpSet owns every live Pump of a session and decides when each one runs: on its
// socket's events, when its channel reports activity (through libssh callbacks, which
// only mark it dirty), and, while its channel is still opening, after every session
// wake-up; so are pumps waiting for the server to open a channel's window (libssh
// reports window adjustments to no callback). Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "forward/pump.h"

namespace tether::forward {

// A local connection to carry over a channel we open on the server (-L, -D).
struct NewStream {
  UniqueFd socket;
  std::string target_host;
  uint16_t target_port = 0;
  std::string target_path;  // a unix socket on the server instead of host:port
  std::string origin_host;  // the local peer, for the channel's originator fields
  uint16_t origin_port = 0;
  std::shared_ptr<ForwardStats> stats;
  std::string log_prefix;
  PumpHooks hooks;
};

// Offered each new stream before it runs on the forward's own session: returns true when
// it took the stream (to run on another connection, see daemon/lane.h), false to leave it
// untouched.
using StreamPlacer = std::function<bool(NewStream&)>;

class PumpSet {
 public:
  explicit PumpSet(PumpContext& context) : context_(context) {}
  ~PumpSet();
  PumpSet(const PumpSet&) = delete;
  PumpSet& operator=(const PumpSet&) = delete;

  // Starts a pump between the stream's socket and a channel opening on `session` to its
  // target.
  void Start(ssh_session session, NewStream stream);

  // Starts a pump between `socket` and `channel`, a channel the server opened and we
  // accepted (a remote forward's connection). Takes ownership of both.
  void Adopt(ssh_session session, ssh_channel channel, UniqueFd socket,
             std::shared_ptr<ForwardStats> stats, std::string log_prefix);

  // Makes the channel of a new pump for the observer that marks it dirty.
  using ChannelMaker = std::function<std::unique_ptr<ssh::ChannelIo>(ssh::ChannelObserver*)>;
  // Starts a pump between `socket` and the channel `make_channel` returns: what Start and
  // Adopt do with an ssh::Channel, and the seam its tests give a fake channel through.
  void StartWith(const ChannelMaker& make_channel, UniqueFd socket,
                 std::shared_ptr<ForwardStats> stats, std::string log_prefix, PumpHooks hooks);

  // Runs every pump that is dirty or opening, until none is dirty (bounded).
  void ServiceDirty();
  // Marks every pump dirty (after the session's output drained, for instance).
  void MarkAllDirty();
  // Ends every pump (link lost, shutdown).
  void Clear();
  size_t size() const { return pumps_.size(); }

 private:
  // The channel observer of a pump: libssh callbacks land here and only mark it dirty.
  struct Entry : ssh::ChannelObserver {
    Entry(PumpSet* set, uint64_t id) : set(set), id(id) {}
    void OnChannelActivity() override;
    PumpSet* set;
    uint64_t id;
    bool dirty = false;
    std::unique_ptr<Pump> pump;
  };
  void Service(uint64_t id);

  PumpContext& context_;
  std::unordered_map<uint64_t, std::unique_ptr<Entry>> pumps_;
  std::vector<uint64_t> dirty_;
  std::unordered_set<uint64_t> opening_;
  std::unordered_set<uint64_t> window_blocked_;
  uint64_t next_id_ = 1;
};

}  // namespace tether::forward
