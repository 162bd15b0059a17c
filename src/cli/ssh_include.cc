#include "cli/ssh_include.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/fs.h"
#include "common/unique_fd.h"

namespace tether::cli {
namespace {

constexpr const char* kComment =
    "# tether: its hosts ride its connection (tether ssh-config --uninstall removes these "
    "two lines)";

// An Include argument: quoted when it holds a space, as ssh_config allows.
std::string Quoted(const std::string& path) {
  return path.find_first_of(" \t") == std::string::npos ? path : "\"" + path + "\"";
}

std::string IncludeLine(const std::string& path) { return "Include " + Quoted(path); }

// True for names a Host line matches as they are: no pattern characters, no spaces.
bool PlainHostName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) {
      return false;
    }
  }
  return true;
}

Result<std::optional<std::string>> ReadIfExists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::optional<std::string>();
    return MakeError("ssh-config", "cannot read " + path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return MakeError("ssh-config", "cannot read " + path);
  return std::optional<std::string>(text.str());
}

// Writes `text` to `path` all or nothing, so that ssh never reads half a file.
Status WriteAtomically(const std::string& path, const std::string& text, mode_t mode) {
  std::string failed;
  if (int err = WriteFileAtomically(path, text, mode, &failed)) {
    return MakeError("ssh-config", "cannot write " + failed + ": " + std::strerror(err));
  }
  return Status::Ok();
}

// The file a config path names: a symlink's target (dotfiles are often links), so that the
// rename replaces the file and not the link.
std::string RealFile(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) != nullptr) return buf;
  return path;  // missing: it is created where it was named
}

// The file's permission bits, or `fallback` when it cannot be read.
mode_t ModeOf(const std::string& path, mode_t fallback) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : fallback;
}

}  // namespace

std::string HostBlocksPath(const daemon::StateDir& state) { return state.path() + "/ssh_config"; }

std::string IncludeLines(const std::string& host_blocks_path) {
  return std::string(kComment) + "\n" + IncludeLine(host_blocks_path) + "\n";
}

std::optional<std::string> AddInclude(const std::string& text,
                                      const std::string& host_blocks_path) {
  if (RemoveInclude(text, host_blocks_path)) return std::nullopt;
  return IncludeLines(host_blocks_path) + text;
}

std::optional<std::string> RemoveInclude(const std::string& text,
                                         const std::string& host_blocks_path) {
  const std::string include = IncludeLine(host_blocks_path);
  std::string out;
  bool found = false;
  size_t at = 0;
  // Line by line, each kept with its own ending; bounded by the text's length.
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    size_t next = end == std::string::npos ? text.size() : end + 1;
    std::string line = text.substr(at, (end == std::string::npos ? text.size() : end) - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == include) {
      found = true;
    } else if (line != kComment) {
      out.append(text, at, next - at);
    }
    at = next;
  }
  if (!found) return std::nullopt;
  return out;
}

std::string HostBlocks(const daemon::StateDir& state, const std::vector<std::string>& hosts) {
  std::string text =
      "# Kept by tether: a Host block for each host it runs, so that plain ssh uses its\n"
      "# connection. Rewritten by `tether up` and `tether down`; do not edit.\n";
  for (const std::string& host : hosts) {
    if (!PlainHostName(host)) continue;
    text += "\nHost " + host + "\n  ControlMaster no\n  ControlPath " +
            Quoted(state.MuxPath(host)) + "\n";
  }
  return text;
}

Result<IncludeChange> InstallInclude(const daemon::StateDir& state,
                                     const std::string& config_path) {
  IncludeChange change;
  change.config_path = RealFile(config_path);
  auto old = ReadIfExists(change.config_path);
  if (!old.ok()) return old.take_error();
  Status blocks = WriteAtomically(HostBlocksPath(state), HostBlocks(state, state.Hosts()), 0600);
  if (!blocks.ok()) return blocks.take_error();
  auto updated = AddInclude(old->value_or(""), HostBlocksPath(state));
  if (!updated) return change;  // already there
  const mode_t mode = ModeOf(change.config_path, 0600);
  if (old->has_value()) {
    change.backup_path = change.config_path + ".tether-backup";
    Status backup = WriteAtomically(change.backup_path, **old, mode);
    if (!backup.ok()) return backup.take_error();
  } else {
    std::string failed;
    if (int err = MakeParentDirs(change.config_path, &failed)) {
      return MakeError("ssh-config", "cannot make " + failed + ": " + std::strerror(err));
    }
  }
  Status written = WriteAtomically(change.config_path, *updated, mode);
  if (!written.ok()) return written.take_error();
  change.changed = true;
  return change;
}

Result<IncludeChange> UninstallInclude(const daemon::StateDir& state,
                                       const std::string& config_path) {
  IncludeChange change;
  change.config_path = RealFile(config_path);
  auto old = ReadIfExists(change.config_path);
  if (!old.ok()) return old.take_error();
  std::optional<std::string> updated;
  if (old->has_value()) updated = RemoveInclude(**old, HostBlocksPath(state));
  if (updated) {
    // An emptied file stays, empty: it may have been so before the install.
    Status written =
        WriteAtomically(change.config_path, *updated, ModeOf(change.config_path, 0600));
    if (!written.ok()) return written.take_error();
    change.changed = true;
  }
  ::unlink(HostBlocksPath(state).c_str());
  return change;
}

void RefreshHostBlocks(const daemon::StateDir& state) {
  struct stat st {};
  if (::stat(HostBlocksPath(state).c_str(), &st) != 0) return;  // not installed
  (void)WriteAtomically(HostBlocksPath(state), HostBlocks(state, state.Hosts()), 0600);
}

}  // namespace tether::cli
