// tmux sessions of the agent's user, from `tmux ls -F <kTmuxFormat>`:
//   train<TAB>3<TAB>1<TAB>1714550000
// (name, windows, attached clients, creation time). A tab separates the fields because
// tmux allows spaces, commas and colons-turned-underscores in names but a tab is rare;
// the numbers are taken from the right so even a name holding a tab survives.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tether::agent {

inline constexpr std::string_view kTmuxFormat =
    "#{session_name}\t#{session_windows}\t#{session_attached}\t#{session_created}";

struct TmuxSession {
  std::string name;
  int64_t windows = 0;
  int64_t attached = 0;  // clients attached right now
  int64_t created_unix = 0;

  bool operator==(const TmuxSession&) const = default;
};

Result<std::vector<TmuxSession>> ParseTmuxSessions(std::string_view text);

// `tmux ls` exits 1 with "no server running on ..." (or "error connecting to ...") when
// the user has no session: that is an empty list, not an error.
bool IsTmuxNoServer(std::string_view stderr_text);

}  // namespace tether::agent
