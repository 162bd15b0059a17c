#include "config/tether_config.h"

#include <toml++/toml.h>
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "forward/port_watch.h"
#include "net/address_scope.h"

namespace tether::config {
namespace {

std::string HomeDir() {
  const char* home = std::getenv("HOME");
  return home != nullptr ? home : "";
}

std::string Where(const std::string& source, const toml::node& node) {
  return source + ":" + std::to_string(node.source().begin.line);
}

Error ConfigError(const std::string& where, const std::string& message) {
  return MakeError("config", where + ": " + message, "see docs/config.md for the format");
}

// A whole number in [min, max] (seconds, ports, counts).
Result<int> ReadWholeNumber(const std::string& source, const std::string& key,
                            const toml::node& node, int min, int max) {
  auto v = node.value<int64_t>();
  if (!v || *v < min || *v > max) {
    return ConfigError(Where(source, node), key + " must be a whole number from " +
                                                std::to_string(min) + " to " + std::to_string(max));
  }
  return static_cast<int>(*v);
}

// Reads the settings keys of `table` into `out`; `allowed_extra` are the other keys the
// table may hold (checked by the caller).
Status ReadSettings(const std::string& source, const toml::table& table, Settings& out,
                    const std::vector<std::string>& allowed_extra) {
  for (const auto& [key_view, node] : table) {
    std::string key(key_view.str());
    if (key == "connect_timeout_s") {
      auto v = ReadWholeNumber(source, key, node, 1, 3600);
      if (!v.ok()) return v.take_error();
      out.connect_timeout_s = *v;
    } else if (key == "keepalive_interval_s") {
      auto v = ReadWholeNumber(source, key, node, 1, 3600);
      if (!v.ok()) return v.take_error();
      out.keepalive_interval_s = *v;
    } else if (key == "keepalive_count_max") {
      auto v = ReadWholeNumber(source, key, node, 1, 100);
      if (!v.ok()) return v.take_error();
      out.keepalive_count_max = *v;
    } else if (key == "proxy_port") {
      auto v = ReadWholeNumber(source, key, node, 0, 65535);
      if (!v.ok()) return v.take_error();
      out.proxy_port = *v;
    } else if (key == "lanes") {
      auto v = ReadWholeNumber(source, key, node, 0, 8);
      if (!v.ok()) return v.take_error();
      out.lanes = *v;
    } else if (key == "upstream") {
      auto v = node.value<std::string>();
      if (!v) return ConfigError(Where(source, node), "upstream must be a URL string");
      out.upstream = *v;
    } else if (key == "laptop_network") {
      auto v = node.value<std::string>();
      if (!v || !net::ParseReach(*v)) {
        return ConfigError(Where(source, node),
                           "laptop_network must be \"public\", \"private\" or \"all\"");
      }
      out.laptop_network = *v;
    } else if (key == "proxy_open") {
      auto v = node.value<bool>();
      if (!v) return ConfigError(Where(source, node), "proxy_open must be true or false");
      out.proxy_open = *v;
    } else if (key == "notify") {
      auto v = node.value<bool>();
      if (!v) return ConfigError(Where(source, node), "notify must be true or false");
      out.notify = *v;
    } else if (key == "fast_exec") {
      auto v = node.value<bool>();
      if (!v || !node.is_boolean()) {
        return ConfigError(Where(source, node), "fast_exec must be true or false");
      }
      out.fast_exec = *v;
    } else if (key == "auto_forward") {
      auto v = node.value<bool>();
      if (!v || !node.is_boolean()) {
        return ConfigError(Where(source, node), "auto_forward must be true or false");
      }
      out.auto_forward = *v;
    } else if (key == "auto_forward_allow" || key == "auto_forward_deny") {
      auto v = node.value<std::string>();
      if (!v || !forward::ParsePortRanges(*v).ok()) {
        return ConfigError(Where(source, node),
                           key + " must be a string of ports and ranges, as \"8000-8999,6006\"");
      }
      (key == "auto_forward_allow" ? out.auto_forward_allow : out.auto_forward_deny) = *v;
    } else if (key == "auto_forward_max") {
      auto v = ReadWholeNumber(source, key, node, 0, 1000);
      if (!v.ok()) return v.take_error();
      out.auto_forward_max = *v;
    } else if (std::find(allowed_extra.begin(), allowed_extra.end(), key) == allowed_extra.end()) {
      return ConfigError(Where(source, node), "unknown key \"" + key + "\"");
    }
  }
  return Status::Ok();
}

Result<std::string> ReadString(const std::string& source, const std::string& key,
                               const toml::node& node) {
  auto v = node.value<std::string>();
  if (!v || v->empty())
    return ConfigError(Where(source, node), key + " must be a non-empty string");
  return *v;
}

Result<std::vector<std::string>> ReadStrings(const std::string& source, const std::string& key,
                                             const toml::node& node) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr) return ConfigError(Where(source, node), key + " must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : *arr) {
    auto s = ReadString(source, key, item);
    if (!s.ok()) return s.take_error();
    out.push_back(*s);
  }
  return out;
}

// "-L 8000:localhost:8000", "-R 9000:localhost:9000", "-D 1080".
Result<ForwardSpec> ParseFlagForward(const std::string& where, const std::string& text) {
  auto space = text.find(' ');
  std::string flag = text.substr(0, space);
  ForwardKind kind;
  if (flag == "-L") {
    kind = ForwardKind::kLocal;
  } else if (flag == "-R") {
    kind = ForwardKind::kRemote;
  } else if (flag == "-D") {
    kind = ForwardKind::kDynamic;
  } else {
    return ConfigError(
        where, "forward \"" + text + "\" must start with -L, -R or -D (as on the command line)");
  }
  std::string spec = space == std::string::npos ? "" : text.substr(space + 1);
  while (!spec.empty() && spec.front() == ' ') spec.erase(spec.begin());
  auto parsed = ParseForwardSpec(kind, spec);
  if (!parsed.ok()) return ConfigError(where, parsed.error().message);
  return *parsed;
}

Result<HostProfile> ReadProfile(const std::string& source, const toml::table& table) {
  HostProfile p;
  Status s = ReadSettings(source, table, p.settings,
                          {"hostname", "user", "port", "identity_file", "forwards"});
  if (!s.ok()) return s.take_error();
  for (const auto& [key_view, node] : table) {
    std::string key(key_view.str());
    if (key == "hostname" || key == "user") {
      auto v = ReadString(source, key, node);
      if (!v.ok()) return v.take_error();
      (key == "hostname" ? p.hostname : p.user) = *v;
    } else if (key == "port") {
      auto v = ReadWholeNumber(source, key, node, 1, 65535);
      if (!v.ok()) return v.take_error();
      p.port = static_cast<uint16_t>(*v);
    } else if (key == "identity_file") {
      if (node.is_string()) {
        auto v = ReadString(source, key, node);
        if (!v.ok()) return v.take_error();
        p.identity_files.push_back(*v);
      } else {
        auto v = ReadStrings(source, key, node);
        if (!v.ok()) return v.take_error();
        p.identity_files = *v;
      }
    } else if (key == "forwards") {
      auto v = ReadStrings(source, key, node);
      if (!v.ok()) return v.take_error();
      for (const auto& text : *v) {
        auto f = ParseFlagForward(Where(source, node), text);
        if (!f.ok()) return f.take_error();
        p.forwards.push_back(*f);
      }
    }
  }
  for (auto& file : p.identity_files) {
    if (file.rfind("~/", 0) == 0) file = HomeDir() + file.substr(1);
  }
  return p;
}

}  // namespace

void Settings::MergeFrom(const Settings& over) {
  if (over.connect_timeout_s) connect_timeout_s = over.connect_timeout_s;
  if (over.keepalive_interval_s) keepalive_interval_s = over.keepalive_interval_s;
  if (over.proxy_port) proxy_port = over.proxy_port;
  if (over.upstream) upstream = over.upstream;
  if (over.proxy_open) proxy_open = over.proxy_open;
  if (over.notify) notify = over.notify;
  if (over.lanes) lanes = over.lanes;
  if (over.auto_forward) auto_forward = over.auto_forward;
  if (over.fast_exec) fast_exec = over.fast_exec;
  if (over.auto_forward_allow) auto_forward_allow = over.auto_forward_allow;
  if (over.auto_forward_deny) auto_forward_deny = over.auto_forward_deny;
  if (over.auto_forward_max) auto_forward_max = over.auto_forward_max;
  if (over.laptop_network) laptop_network = over.laptop_network;
  if (over.keepalive_count_max) keepalive_count_max = over.keepalive_count_max;
}

std::string TetherConfig::DefaultPath() {
  if (const char* p = std::getenv("TETHER_CONFIG"); p != nullptr && *p != '\0') return p;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x != nullptr && *x != '\0') {
    return std::string(x) + "/tether/config.toml";
  }
  return HomeDir() + "/.config/tether/config.toml";
}

Result<TetherConfig> TetherConfig::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return TetherConfig{};
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

Result<TetherConfig> TetherConfig::Parse(std::string_view text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return ConfigError(source_name + ":" + std::to_string(e.source().begin.line),
                       std::string(e.description()));
  }
  TetherConfig config;
  for (const auto& [key_view, node] : root) {
    std::string key(key_view.str());
    if (key == "settings") {
      const toml::table* t = node.as_table();
      if (t == nullptr) return ConfigError(Where(source_name, node), "[settings] must be a table");
      Status s = ReadSettings(source_name, *t, config.defaults_, {});
      if (!s.ok()) return s.take_error();
    } else if (key == "hosts") {
      const toml::table* hosts = node.as_table();
      if (hosts == nullptr) return ConfigError(Where(source_name, node), "[hosts] must be a table");
      for (const auto& [name, host_node] : *hosts) {
        const toml::table* t = host_node.as_table();
        if (t == nullptr) {
          return ConfigError(Where(source_name, host_node),
                             "hosts." + std::string(name.str()) + " must be a table");
        }
        auto profile = ReadProfile(source_name, *t);
        if (!profile.ok()) return profile.take_error();
        config.hosts_[std::string(name.str())] = std::move(*profile);
      }
    } else {
      return ConfigError(Where(source_name, node),
                         "unknown section \"" + key + "\" (expected [settings] or [hosts.NAME])");
    }
  }
  return config;
}

Settings TetherConfig::SettingsFor(const std::string& host) const {
  Settings s = defaults_;
  if (const HostProfile* p = ProfileFor(host)) s.MergeFrom(p->settings);
  return s;
}

const HostProfile* TetherConfig::ProfileFor(const std::string& host) const {
  auto it = hosts_.find(host);
  return it == hosts_.end() ? nullptr : &it->second;
}

void TetherConfig::ApplyTo(HostConfig& host) const {
  Settings s = SettingsFor(host.alias);
  if (s.connect_timeout_s) host.connect_timeout = std::chrono::seconds(*s.connect_timeout_s);
  if (s.keepalive_interval_s) host.server_alive_interval_s = *s.keepalive_interval_s;
  if (s.keepalive_count_max) host.server_alive_count_max = *s.keepalive_count_max;
  const HostProfile* p = ProfileFor(host.alias);
  if (p == nullptr) return;
  if (p->hostname) host.hostname = *p->hostname;
  if (p->user) host.user = *p->user;
  if (p->port) host.port = *p->port;
  if (!p->identity_files.empty()) {
    host.identity_files = p->identity_files;
    host.identity_files_default = false;
  }
}

std::vector<ForwardSpec> MergeForwards(const std::vector<std::vector<ForwardSpec>>& by_precedence) {
  std::vector<ForwardSpec> out;
  for (const auto& group : by_precedence) {
    for (const auto& f : group) {
      bool taken = false;
      for (const auto& have : out) {
        // Each -R 0 gets a port of its own: only the same one twice is one.
        const bool any_port =
            f.kind == ForwardKind::kRemote && !f.listen.is_unix() && f.listen.port == 0;
        if (have.kind == f.kind && (any_port ? have == f : have.listen == f.listen)) {
          taken = true;
          break;
        }
      }
      if (!taken) out.push_back(f);
    }
  }
  return out;
}

}  // namespace tether::config
