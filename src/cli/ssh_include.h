// `tether ssh-config --install`: one Include line at the top of the user's ssh_config,
// pointing at a file in the state directory that tether keeps with a Host block per host
// it runs (ControlMaster no, ControlPath HOST.mux). Being first, those blocks win over
// whatever the rest of the file says (ssh takes the first value of each keyword), so plain
// ssh, scp, rsync and git ride tether's connection while it is up, and connect directly
// when it is not (the socket is gone). `--uninstall` takes the lines out again, leaving the
// file as it was byte for byte.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "daemon/state_dir.h"

namespace tether::cli {

// The file the Include line names: STATE/ssh_config.
std::string HostBlocksPath(const daemon::StateDir& state);

// The two lines put at the top: a comment that says what they are, and the Include.
std::string IncludeLines(const std::string& host_blocks_path);

// `text` with IncludeLines() in front, or nullopt if it already includes that file.
std::optional<std::string> AddInclude(const std::string& text, const std::string& host_blocks_path);
// `text` without the lines AddInclude put in (the comment and the Include line, wherever
// they are now), or nullopt if it has no such Include.
std::optional<std::string> RemoveInclude(const std::string& text,
                                         const std::string& host_blocks_path);

// The file's text: a Host block for each of `hosts` whose name ssh can match verbatim.
std::string HostBlocks(const daemon::StateDir& state, const std::vector<std::string>& hosts);

struct IncludeChange {
  bool changed = false;     // false: it was already so
  std::string config_path;  // the file changed (a symlink's target)
  std::string backup_path;  // the copy made first ("" if none: the file was new)
};
// Installs or removes the Include in `config_path` (written atomically, its mode kept; a
// symlink's target is the file changed). Install makes a backup first (CONFIG.tether-backup)
// and writes the host blocks file.
Result<IncludeChange> InstallInclude(const daemon::StateDir& state, const std::string& config_path);
Result<IncludeChange> UninstallInclude(const daemon::StateDir& state,
                                       const std::string& config_path);

// Rewrites the host blocks file from the hosts that have a daemon now, if it exists (that
// is, if the Include was installed). `up` and `down` call it.
void RefreshHostBlocks(const daemon::StateDir& state);

}  // namespace tether::cli
