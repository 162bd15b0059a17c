// Where the agent's unix socket lives by default: a directory only its owner can enter.
//   $XDG_RUNTIME_DIR/tether   when XDG_RUNTIME_DIR is set and is the owner's 0700 directory
//   /run/user/UID/tether      else, when /run/user/UID exists and is the owner's
//   ~/.cache/tether/run       else
// Each is made 0700 when missing, and refused when it is a symlink, belongs to another
// account or lets group or others in: the socket's path must be one nobody else can have
// taken first (a squatted socket would receive the laptop's bearer token).
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"

namespace tether::agent {

inline constexpr std::string_view kSocketName = "agent.sock";

struct RuntimeDirInputs {
  std::string xdg_runtime_dir;  // $XDG_RUNTIME_DIR, "" when unset
  std::string run_user_root = "/run/user";
  std::string home;  // for ~/.cache/tether/run
  uid_t uid = 0;
};

// The environment and account of this process.
RuntimeDirInputs CurrentRuntimeDirInputs();

// Picks (and makes) the directory; errors say what is wrong with it.
Result<std::string> ResolveRuntimeDir(const RuntimeDirInputs& in);

// The directory `path` is ours alone: a real directory (not a symlink), owned by `uid`,
// no access for group or others. With `create`, a missing one is made 0700 (its parents
// too, 0700).
Status CheckPrivateDir(const std::string& path, uid_t uid, bool create);

// The parent of a socket given with --socket: made 0700 when missing; refused when it is
// a symlink, belongs to another account or others may write in it.
Status CheckSocketParent(const std::string& socket_path, uid_t uid);

// The home directory: $HOME, else this uid's line in /etc/passwd (read as a file: a static
// binary has no NSS modules to ask), else an error.
Result<std::string> AgentHomeDir();

}  // namespace tether::agent
