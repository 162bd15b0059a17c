// tether's own configuration: ~/.config/tether/config.toml (docs/config.md). Per-host
// profiles (forwards a host always gets, and overrides of where it leads) and tether's
// settings. Precedence: command line > this file > ssh_config.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/forward_spec.h"
#include "config/ssh_config.h"

namespace tether::config {

// Settings of tether itself; unset ones keep the built-in defaults.
struct Settings {
  std::optional<int> connect_timeout_s;
  std::optional<int> keepalive_interval_s;
  std::optional<int> keepalive_count_max;
  // The server proxy (`tether up --proxy`): its port on the server (0: off), the laptop's
  // upstream proxy, and whether it is open to every account.
  std::optional<int> proxy_port;
  std::optional<std::string> upstream;
  std::optional<bool> proxy_open;
  // Further connections for -L/-D streams (`tether up --lanes`), 0..8.
  std::optional<int> lanes;
  // What of the laptop's network the server proxy and reverse dynamic forwards reach:
  // "public" (the default), "private" (also its private networks) or "all" (its loopback
  // and link-local too).
  std::optional<std::string> laptop_network;
  // A desktop notification when a reconnect needs a person's login (true by default).
  std::optional<bool> notify;
  // Ports that forward themselves (`tether up --auto-forward`): on or off, the server
  // ports they may and may not be ("8000-8999,6006"), and how many at most.
  std::optional<bool> auto_forward;
  std::optional<std::string> auto_forward_allow;
  std::optional<std::string> auto_forward_deny;
  std::optional<int> auto_forward_max;
  // Commands in milliseconds (`tether up --fast-exec`): a resident runner on the server.
  std::optional<bool> fast_exec;

  // Fields set in `over` replace ours.
  void MergeFrom(const Settings& over);
  bool operator==(const Settings&) const = default;
};

struct HostProfile {
  std::optional<std::string> hostname;
  std::optional<std::string> user;
  std::optional<uint16_t> port;
  std::vector<std::string> identity_files;
  std::vector<ForwardSpec> forwards;
  Settings settings;
};

class TetherConfig {
 public:
  // $TETHER_CONFIG, else $XDG_CONFIG_HOME/tether/config.toml, else
  // ~/.config/tether/config.toml.
  static std::string DefaultPath();
  // A missing file is an empty configuration; a malformed one is an error that names the
  // file, line and key.
  static Result<TetherConfig> Load(const std::string& path);
  static Result<TetherConfig> Parse(std::string_view text, const std::string& source_name);

  // [settings] merged with the host's own settings (the host's win).
  Settings SettingsFor(const std::string& host) const;
  // The profile of `host` ([hosts."NAME"]), or nullptr.
  const HostProfile* ProfileFor(const std::string& host) const;

  // Applies the profile of host.alias onto `host` (over ssh_config's values).
  void ApplyTo(HostConfig& host) const;

 private:
  Settings defaults_;
  std::map<std::string, HostProfile> hosts_;
};

// Joins forwards from higher to lower precedence: a later forward that listens where an
// earlier one does is dropped (the command line's -L 8000 beats the profile's -L 8000).
std::vector<ForwardSpec> MergeForwards(const std::vector<std::vector<ForwardSpec>>& by_precedence);

}  // namespace tether::config
