// tether logs HOST [-n LINES] [-f]: the daemon's log, its last lines, and with -f what
// follows (across a rotation), like tail -F.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <string>
#include <thread>

#include "cli/cli.h"
#include "cli/errors.h"
#include "daemon/state_dir.h"

namespace tether::cli {
namespace {

constexpr auto kFollowInterval = std::chrono::milliseconds(200);

ino_t InodeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

int RunLogs(const GlobalOptions& /*global*/, const LogsOptions& options) {
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  std::string path = state->LogPath(options.host);
  std::ifstream in(path);
  if (!in) {
    PrintError(MakeError("logs", "no log for " + options.host + " (" + path + ")",
                         "the host has not been up since its log was last removed"));
    return 1;
  }
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (options.lines > 0 && last.size() > static_cast<size_t>(options.lines)) last.pop_front();
  }
  for (const auto& l : last) std::printf("%s\n", l.c_str());
  std::fflush(stdout);
  if (!options.follow) return 0;

  in.clear();
  ino_t inode = InodeOf(path);
  std::string partial;
  for (;;) {  // until interrupted, like tail -f
    char buf[8192];
    in.read(buf, sizeof buf);
    std::streamsize n = in.gcount();
    if (n > 0) {
      std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
      std::fflush(stdout);
      continue;
    }
    in.clear();
    std::this_thread::sleep_for(kFollowInterval);
    ino_t now = InodeOf(path);
    if (now != 0 && now != inode) {  // rotated: read the new file from its start
      in.close();
      in.open(path);
      inode = now;
    }
  }
}

}  // namespace tether::cli
