#include "agent/tmux.h"

#include "common/text.h"

namespace tether::agent {

Result<std::vector<TmuxSession>> ParseTmuxSessions(std::string_view text) {
  std::vector<TmuxSession> sessions;
  size_t line_no = 0;
  for (std::string_view line : SplitLines(text)) {
    ++line_no;
    if (line.empty()) continue;
    // Three numbers from the right; the rest is the name.
    int64_t numbers[3] = {};
    std::string_view rest = line;
    bool ok = true;
    for (int i = 2; i >= 0 && ok; --i) {
      size_t tab = rest.rfind('\t');
      if (tab == std::string_view::npos) {
        ok = false;
        break;
      }
      auto n = ParseInt(rest.substr(tab + 1));
      ok = n.has_value();
      if (ok) numbers[i] = *n;
      rest = rest.substr(0, tab);
    }
    if (!ok || rest.empty()) {
      return MakeError("tmux", "line " + std::to_string(line_no) + ": unexpected format");
    }
    sessions.push_back(TmuxSession{std::string(rest), numbers[0], numbers[1], numbers[2]});
  }
  return sessions;
}

bool IsTmuxNoServer(std::string_view stderr_text) {
  return stderr_text.find("no server running") != std::string_view::npos ||
         stderr_text.find("error connecting to") != std::string_view::npos ||
         stderr_text.find("no sessions") != std::string_view::npos;
}

}  // namespace tether::agent
