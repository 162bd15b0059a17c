// The mux protocol at the user's own ControlPath (the one ssh_config names for the host,
// expanded as ssh does: config/control_path.h), beside HOST.mux: plain ssh, scp, rsync
// and git with the guide's `Host *` block (ControlMaster auto, ControlPath ...) then find a
// master there and ride tether's connection with no edit of the user's files.
//
// What it takes and what it leaves, as an ssh user expects:
// - A live master on the path (OpenSSH's: it answers a mux hello) is left alone and
//   reported with its pid. A stale socket (connect refused) is replaced, as ssh's
//   ControlMaster auto does.
// - The directory is not created: ssh does not create it either (its bind fails), and a
//   directory the user never made is not ours to make. Reported, and tried again later.
// - Refused: a parent directory another account may write to without the sticky bit, or
//   owned by another account (it could swap the socket), a socket of another uid, and
//   anything at the path that is not a socket.
// - Bound the way ssh's master binds (mux.c muxserver_listen): on a random name in the
//   same directory, then link(2)ed into place, so that a master ssh starts at the same
//   moment either wins or loses whole. 0600 and the peer-uid check, as HOST.mux.
// - Removed on Release (down, the daemon's exit, `ssh -O stop`) only while the file there
//   is still the one we bound (same device and inode).
// Loop thread only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "config/ssh_config.h"
#include "control/mux_server.h"
#include "daemon/control_path_status.h"
#include "net/event_loop.h"

namespace tether::daemon {

// How often a path we do not serve is tried again (a master that exited, a directory made
// meanwhile), and one we serve checked to still be ours.
inline constexpr std::chrono::seconds kControlPathRetry{10};
// A live master answers its hello and an alive check within this (it is a local socket).
inline constexpr std::chrono::milliseconds kControlPathProbeTimeout{1000};

// Where the socket would go, judged before anything is touched.
struct ControlPathPlace {
  enum class Verdict {
    kFree,         // nothing there: bind
    kSocket,       // a socket of ours: probe it (ours, stale, or a live master)
    kNoDirectory,  // the parent is missing
    kRefused,      // unsafe or not a socket: `why`
  };
  Verdict verdict = Verdict::kFree;
  std::string why;
  dev_t dev = 0;  // kSocket: the file there
  ino_t ino = 0;
};
// Looks at `path` and its parent directory for a process running as `uid`.
ControlPathPlace JudgeControlPathPlace(const std::string& path, uid_t uid);

class ControlPathListener {
 public:
  // `path`: expanded; `host` serves the sessions (the daemon). Nothing is touched before
  // Claim().
  ControlPathListener(net::EventLoop& loop, std::string path, control::MuxHost& host,
                      std::string alias);
  ~ControlPathListener();
  ControlPathListener(const ControlPathListener&) = delete;
  ControlPathListener& operator=(const ControlPathListener&) = delete;

  // The listener for `host`'s ControlPath as the user's ssh expands it, or null when
  // ssh_config names none (unset or "none") or names `own_mux` (HOST.mux: what
  // `tether ssh-config --install` points it at). A path that cannot be expanded gives a
  // listener that only reports why (state kFailed).
  static std::unique_ptr<ControlPathListener> ForHost(net::EventLoop& loop,
                                                      const config::HostConfig& host,
                                                      const std::string& own_mux,
                                                      control::MuxHost& mux_host);

  // Takes the path if it can, and keeps trying every kControlPathRetry while it cannot.
  void Claim();
  // No new clients; the socket file goes if it is still ours. Sessions carry on.
  void Release();

  const ControlPathStatus& status() const { return status_; }

 private:
  void TryTake();
  void OnRetry();
  // Binds on a private name and links it into place; false when another file got there.
  Status Bind();
  bool StillOurs() const;
  void Set(ControlPathState state, std::string detail, uint32_t pid = 0);

  net::EventLoop& loop_;
  control::MuxHost& host_;
  std::string alias_;
  ControlPathStatus status_;
  std::unique_ptr<control::MuxServer> server_;
  dev_t dev_ = 0;  // the socket file we bound
  ino_t ino_ = 0;
  net::EventLoop::TimerId retry_ = 0;
  bool released_ = false;
  bool usable_ = true;  // false: the path could not even be expanded
};

}  // namespace tether::daemon
