#include "daemon/control_path_listener.h"

#include <openssl/rand.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/log.h"
#include "config/control_path.h"
#include "control/mux_probe.h"
#include "net/socket.h"

namespace tether::daemon {
namespace {

// Whether process `pid` runs this program: a master at the path that is another tether
// daemon (two hosts whose ControlPath expands alike), not ssh's. The same executable file,
// or, for a daemon started before an upgrade replaced the file, the same process name. A
// process of another account cannot be read and counts as not ours.
bool RunsOurProgram(pid_t pid) {
  if (pid <= 0) return false;
  const std::string proc = "/proc/" + std::to_string(pid);
  struct stat ours {}, theirs {};
  if (::stat("/proc/self/exe", &ours) == 0 && ::stat((proc + "/exe").c_str(), &theirs) == 0 &&
      ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino) {
    return true;
  }
  auto name_of = [](const std::string& comm) {
    std::string name;
    std::ifstream in(comm);
    std::getline(in, name);
    return name;
  };
  const std::string ours_called = name_of("/proc/self/comm");
  return !ours_called.empty() && ours_called == name_of(proc + "/comm");
}

// ssh's master binds on "PATH." plus 16 random characters (mux.c muxserver_listen): a
// ControlPath longer than what leaves room for that cannot have a master, ssh's or ours.
constexpr size_t kTempSuffixBytes = 17;
constexpr size_t kSunPathBytes = sizeof(sockaddr_un{}.sun_path);

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string RandomSuffix() {
  unsigned char bytes[8];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    // Uniqueness, not secrecy, is what the name needs: link(2) decides who wins.
    const uint64_t fallback =
        static_cast<uint64_t>(::getpid()) << 20 ^
        static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    std::memcpy(bytes, &fallback, sizeof bytes);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = ".";
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

}  // namespace

const char* ToString(ControlPathState state) {
  switch (state) {
    case ControlPathState::kServing:
      return "serving";
    case ControlPathState::kHeld:
      return "held";
    case ControlPathState::kNoDirectory:
      return "no directory";
    case ControlPathState::kRefused:
      return "refused";
    case ControlPathState::kStopped:
      return "stopped";
    case ControlPathState::kFailed:
      return "failed";
  }
  return "failed";
}

ControlPathPlace JudgeControlPathPlace(const std::string& path, uid_t uid) {
  ControlPathPlace place;
  auto refuse = [&place](std::string why) {
    place.verdict = ControlPathPlace::Verdict::kRefused;
    place.why = std::move(why);
    return place;
  };
  const std::string dir = ParentOf(path);
  struct stat d {};
  if (::stat(dir.c_str(), &d) != 0) {
    if (errno == ENOENT) {
      place.verdict = ControlPathPlace::Verdict::kNoDirectory;
      place.why = "its directory " + dir +
                  " does not exist (ssh does not create it either: " + "mkdir -m 700 " + dir + ")";
      return place;
    }
    return refuse("its directory " + dir + " cannot be read: " + std::strerror(errno));
  }
  if (!S_ISDIR(d.st_mode)) return refuse(dir + " is not a directory");
  if ((d.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (d.st_mode & S_ISVTX) == 0) {
    return refuse("its directory " + dir +
                  " may be written by other accounts and has no sticky bit (one could swap "
                  "the socket): chmod 700 " +
                  dir);
  }
  if (d.st_uid != uid && d.st_uid != 0) {
    return refuse("its directory " + dir + " belongs to uid " + std::to_string(d.st_uid) +
                  ", who could swap the socket");
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return place;
    return refuse(std::string("cannot look at it: ") + std::strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return refuse("something that is not a socket is there");
  if (st.st_uid != uid) {
    return refuse("the socket there belongs to uid " + std::to_string(st.st_uid));
  }
  place.verdict = ControlPathPlace::Verdict::kSocket;
  place.dev = st.st_dev;
  place.ino = st.st_ino;
  return place;
}

ControlPathListener::ControlPathListener(net::EventLoop& loop, std::string path,
                                         control::MuxHost& host, std::string alias)
    : loop_(loop), host_(host), alias_(std::move(alias)) {
  status_.path = std::move(path);
}

ControlPathListener::~ControlPathListener() { Release(); }

std::unique_ptr<ControlPathListener> ControlPathListener::ForHost(net::EventLoop& loop,
                                                                  const config::HostConfig& host,
                                                                  const std::string& own_mux,
                                                                  control::MuxHost& mux_host) {
  const std::string& written = host.control_path;
  if (written.empty() || written == "none") return nullptr;
  auto fail = [&](const Error& e) {
    auto listener = std::make_unique<ControlPathListener>(loop, written, mux_host, host.alias);
    listener->usable_ = false;
    listener->Set(ControlPathState::kFailed, e.message);
    return listener;
  };
  auto identity = config::CurrentIdentity();
  if (!identity.ok()) return fail(identity.error());
  // Only %C and %j differ between releases: ask ssh its version only when they are used.
  config::OpenSshVersion version = config::OpenSshVersion::WithJumpHost();
  if (written.find("%C") != std::string::npos || written.find("%j") != std::string::npos) {
    if (auto detected = config::DetectOpenSshVersion()) version = *detected;
  }
  config::ControlPathExpander expander(std::move(*identity), version);
  auto path = expander.Expand(written, host);
  if (!path.ok()) return fail(path.error());
  if (*path == own_mux) return nullptr;
  return std::make_unique<ControlPathListener>(loop, std::move(*path), mux_host, host.alias);
}

void ControlPathListener::Set(ControlPathState state, std::string detail, uint32_t pid) {
  const bool changed = state != status_.state || detail != status_.detail;
  status_.state = state;
  status_.detail = std::move(detail);
  status_.holder_pid = pid;
  if (!changed) return;
  if (state == ControlPathState::kServing) {
    spdlog::info("[{}] serving ssh's ControlPath {}", alias_, status_.path);
  } else {
    spdlog::warn("[{}] ControlPath {} {}", alias_, status_.path, status_.detail);
  }
}

void ControlPathListener::Claim() {
  if (!usable_) return;
  released_ = false;
  TryTake();
  if (retry_ == 0) retry_ = loop_.AddTimer(kControlPathRetry, [this] { OnRetry(); });
}

void ControlPathListener::OnRetry() {
  retry_ = 0;
  if (released_ || status_.state == ControlPathState::kStopped) return;
  if (server_ && !StillOurs()) {
    // Someone removed or replaced our file: those clients can no longer reach us there.
    // The listener goes (nothing is unlinked: the file is not ours) and the path is
    // judged again like any other.
    server_->SetSocketRemover([] {});
    server_->StopListening();
    server_.reset();
    spdlog::warn("[{}] ControlPath {} was removed or replaced; taking it again if free", alias_,
                 status_.path);
  }
  if (!server_) TryTake();
  retry_ = loop_.AddTimer(kControlPathRetry, [this] { OnRetry(); });
}

void ControlPathListener::TryTake() {
  if (server_) return;
  if (status_.path.size() + kTempSuffixBytes >= kSunPathBytes) {
    Set(ControlPathState::kFailed, "is too long for a unix socket (" +
                                       std::to_string(status_.path.size()) +
                                       " bytes; ssh's own "
                                       "master could not bind it either)");
    return;
  }
  ControlPathPlace place = JudgeControlPathPlace(status_.path, ::geteuid());
  switch (place.verdict) {
    case ControlPathPlace::Verdict::kNoDirectory:
      Set(ControlPathState::kNoDirectory, place.why);
      return;
    case ControlPathPlace::Verdict::kRefused:
      Set(ControlPathState::kRefused, "is not taken: " + place.why);
      return;
    case ControlPathPlace::Verdict::kSocket: {
      control::MuxProbe probe = control::ProbeMuxSocket(status_.path, kControlPathProbeTimeout);
      switch (probe.kind) {
        case control::MuxProbe::Kind::kMaster:
          if (RunsOurProgram(probe.pid)) {
            Set(ControlPathState::kHeld,
                "is held by another tether daemon, pid " + std::to_string(probe.pid) +
                    ", for a host whose ControlPath names the same file; tether leaves it alone "
                    "(`tether status` names that host; `tether down` it, or give one of the "
                    "two hosts a ControlPath of its own)",
                probe.pid);
            return;
          }
          Set(ControlPathState::kHeld,
              "is held by an OpenSSH master, pid " + std::to_string(probe.pid) +
                  "; tether leaves it alone (ssh -O exit stops that master, then tether takes the "
                  "path)",
              probe.pid);
          return;
        case control::MuxProbe::Kind::kOther:
          Set(ControlPathState::kRefused,
              "is not taken: a socket there accepts but " +
                  (probe.detail.empty() ? "is not a mux master" : probe.detail));
          return;
        case control::MuxProbe::Kind::kStale:
          // As ssh's ControlMaster auto does: nobody accepts on it, so it goes. Only the
          // file judged above is removed; a master that replaced it meanwhile stays.
          {
            struct stat st {};
            if (::lstat(status_.path.c_str(), &st) == 0 && st.st_dev == place.dev &&
                st.st_ino == place.ino) {
              ::unlink(status_.path.c_str());
              spdlog::info("[{}] ControlPath {}: stale socket removed", alias_, status_.path);
            }
          }
          break;
        case control::MuxProbe::Kind::kAbsent:
          break;
      }
      break;
    }
    case ControlPathPlace::Verdict::kFree:
      break;
  }
  Status bound = Bind();
  if (!bound.ok()) Set(ControlPathState::kFailed, bound.error().message);
}

Status ControlPathListener::Bind() {
  const std::string temp = status_.path + RandomSuffix();
  auto listener = net::ListenUnix(temp);  // 0600 from the moment it exists
  if (!listener.ok()) return listener.take_error();
  if (::link(temp.c_str(), status_.path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    if (err == EEXIST) {
      // A master of ssh's own got there first: judged again on the next round.
      Set(ControlPathState::kHeld, "was taken by another program just now; tried again later");
      return Status::Ok();
    }
    return ErrnoError("control path", "cannot link a socket to " + status_.path, err);
  }
  ::unlink(temp.c_str());
  struct stat st {};
  if (::lstat(status_.path.c_str(), &st) != 0) {
    return ErrnoError("control path", "the socket at " + status_.path + " went at once", errno);
  }
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  server_ = std::make_unique<control::MuxServer>(loop_, std::move(*listener), status_.path, host_);
  server_->SetSocketRemover([this] {
    if (StillOurs()) ::unlink(status_.path.c_str());
    // `ssh -O stop` on this path: honoured until the next `tether up`.
    if (!released_) Set(ControlPathState::kStopped, "stopped by ssh -O stop");
  });
  Set(ControlPathState::kServing, "");
  return Status::Ok();
}

bool ControlPathListener::StillOurs() const {
  struct stat st {};
  return ::lstat(status_.path.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_;
}

void ControlPathListener::Release() {
  released_ = true;
  if (retry_ != 0) {
    loop_.CancelTimer(retry_);
    retry_ = 0;
  }
  if (server_) {
    server_->StopListening();  // its remover unlinks the file if it is still ours
    server_.reset();
  }
}

}  // namespace tether::daemon
