// tether service install|uninstall HOST [--print]: a per-user service that brings HOST up
// at login and restarts it on failure, running `tether up HOST --foreground` (and
// `tether down HOST` when stopped): a systemd user unit on Linux, a launchd agent on macOS.
// The texts are made here, apart from where they go, so that tests read them on any system.
#pragma once

#include <string>

#include "common/result.h"

namespace tether::cli {

struct ServiceSpec {
  std::string tether;       // the tether binary, an absolute path
  std::string host;         // as given to `tether up`
  std::string config_file;  // -F FILE, "" for ~/.ssh/config
};

// The systemd unit (for ~/.config/systemd/user/NAME.service).
std::string SystemdUnit(const ServiceSpec& spec);
// The launchd property list (for ~/Library/LaunchAgents/LABEL.plist).
std::string LaunchdPlist(const ServiceSpec& spec, const std::string& label, const std::string& log);
// "tether-HOST" with HOST made a file name (daemon::FileNameFor).
std::string ServiceName(const std::string& host);

// systemd's ExecStart quoting of one argument: double quotes when needed, \ and " escaped,
// % doubled (systemd expands %-specifiers there).
std::string SystemdQuote(const std::string& arg);
// XML text escaping for a plist string.
std::string XmlEscape(const std::string& text);

}  // namespace tether::cli
