// Forward specifications in OpenSSH's grammar (-L, -R, -D and the LocalForward,
// RemoteForward, DynamicForward lines of ssh_config). Pure parsing, no I/O.
// The grammar, by example, is at the top of forward_spec.cc and in docs/forward-spec.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tether::config {

// One end of a forward: a TCP address (host may be empty) or a unix socket path.
struct Endpoint {
  std::string host;  // a bind address or a target host; IPv6 without brackets; "*" = any
  uint16_t port = 0;
  std::string path;  // unix socket path; when set, host and port are unused

  bool is_unix() const { return !path.empty(); }
  // "host:port", "[v6]:port", ":port" when host is empty, or the path.
  std::string ToString() const;
  bool operator==(const Endpoint&) const = default;
};

enum class ForwardKind { kLocal, kRemote, kDynamic };

struct ForwardSpec {
  ForwardKind kind = ForwardKind::kLocal;
  // -L and -D: where the laptop listens (host empty = loopback, as ssh without
  // GatewayPorts). -R: where the server listens.
  Endpoint listen;
  // -L: what the server connects to. -R: what the laptop connects to.
  // Unused for -D and for -R without a destination (a reverse dynamic forward).
  Endpoint target;
  bool dynamic = false;  // -D, or -R with no destination

  // The spec in ssh's grammar, as a user would write it after -L/-R/-D.
  std::string ToString() const;
  // "-L 8000:localhost:8000" style, for messages.
  std::string ToFlagString() const;
  bool operator==(const ForwardSpec&) const = default;
};

// Parses the argument of -L / -R / -D. Errors name the spec and say what is wrong.
Result<ForwardSpec> ParseForwardSpec(ForwardKind kind, std::string_view spec);

// Parses the arguments of a LocalForward / RemoteForward / DynamicForward line of
// ssh_config: "[bind:]port host:hostport" (two words), or the single-word forms.
Result<ForwardSpec> ParseForwardConfigArgs(ForwardKind kind, std::string_view args);

// Splits the arguments of an ssh_config line into words the way readconf.c (argv_split)
// does: spaces and tabs separate, "double" or 'single' quotes group, \" \' \\ and "\ " are
// escapes, and a '#' where a word would start ends the line. Fails on an unterminated quote.
// ssh_config.cc uses it too, so the *Forward lines and every other line split alike.
Result<std::vector<std::string>> SplitConfigWords(std::string_view args);

}  // namespace tether::config
