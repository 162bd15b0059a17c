#include "cli/start_options.h"

#include <algorithm>
#include <cctype>
#include <tuple>

namespace tether::cli {
namespace {

// "Keyword=value" or "Keyword value": the keyword, lowercased, and the value.
std::pair<std::string, std::string> SplitOption(const std::string& option) {
  size_t end = option.find_first_of("= \t");
  std::string key = option.substr(0, end);
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string value;
  if (end != std::string::npos) {
    size_t start = option.find_first_not_of("= \t", end);
    if (start != std::string::npos) value = option.substr(start);
  }
  return {key, value};
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

std::vector<std::string> Strings(const nlohmann::json& running, const char* key) {
  std::vector<std::string> out;
  for (const auto& v : running.value(key, nlohmann::json::array())) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

std::optional<Error> StartOptionConflicts(const std::string& alias, const nlohmann::json& running,
                                          const StartOptions& given) {
  std::vector<std::string> differ;  // "--lanes 2 (it runs --lanes 0)"
  if (given.laptop_network) {
    const std::string runs = running.value("laptop_network", "");
    if (*given.laptop_network != runs) {
      differ.push_back("--laptop-network=" + *given.laptop_network +
                       " (it runs --laptop-network=" + (runs.empty() ? "?" : runs) + ")");
    }
  }
  if (given.lanes) {
    const int runs = running.value("lanes", nlohmann::json::object()).value("wanted", -1);
    if (*given.lanes != runs) {
      differ.push_back("--lanes " + std::to_string(*given.lanes) + " (it runs --lanes " +
                       std::to_string(runs) + ")");
    }
  }
  if (given.user && *given.user != running.value("user", "")) {
    differ.push_back("-l " + *given.user + " (it logs in as " + running.value("user", "") + ")");
  }
  if (given.port && *given.port != running.value("port", 0)) {
    differ.push_back("-p " + std::to_string(*given.port) + " (it runs port " +
                     std::to_string(running.value("port", 0)) + ")");
  }
  if (given.jump) {
    const std::vector<std::string> runs = Strings(running, "jump");
    if (*given.jump != runs) {
      differ.push_back("-J " + Join(*given.jump, ",") + " (it runs " +
                       (runs.empty() ? "no jump host" : "-J " + Join(runs, ",")) + ")");
    }
  }
  const std::vector<std::string> identities = Strings(running, "identity_files");
  for (const auto& file : given.identity_files) {
    if (std::find(identities.begin(), identities.end(), file) == identities.end()) {
      differ.push_back("-i " + file + " (it runs " +
                       (identities.empty() ? "none" : Join(identities, ", ")) + ")");
    }
  }
  const std::vector<std::string> options = Strings(running, "ssh_options");
  for (const auto& option : given.ssh_options) {
    const auto [key, value] = SplitOption(option);
    std::optional<std::string> runs;  // the daemon's -o for this keyword, if any
    for (const auto& o : options) {
      if (SplitOption(o).first == key && !runs) runs = o;  // the first one counts, as in ssh
    }
    if (!runs || SplitOption(*runs).second != value) {
      differ.push_back("-o " + option + " (it runs " +
                       (runs ? "-o " + *runs : "without -o " + option.substr(0, key.size())) + ")");
    }
  }
  if (given.proxy_open_port) {
    for (const auto& f : running.value("forwards", nlohmann::json::array())) {
      const std::string spec = f.value("spec", "");
      const std::string port = spec.substr(spec.rfind(':') + 1);
      if (f.value("kind", "") != "proxy" || port != std::to_string(*given.proxy_open_port)) {
        continue;
      }
      if (f.value("access", "") != "anyone") {
        differ.push_back("--proxy-open (its server proxy on port " + port +
                         " serves its owner alone)");
      }
    }
  }
  const nlohmann::json auto_forward = running.value("auto_forward", nlohmann::json());
  if (given.auto_forward && !auto_forward.is_object()) {
    differ.push_back("--auto-forward (it does not forward the server's ports by itself)");
  } else if (auto_forward.is_object()) {
    for (auto [flag, value, key, none] :
         {std::tuple{"--auto-forward-allow", &given.auto_forward_allow, "allow", "any port"},
          std::tuple{"--auto-forward-deny", &given.auto_forward_deny, "deny", "none"}}) {
      const std::string runs = auto_forward.value(key, "");
      if (*value && **value != runs) {
        differ.push_back(std::string(flag) + " " + ((*value)->empty() ? "\"\"" : **value) +
                         " (it runs " + (runs.empty() ? none : runs) + ")");
      }
    }
    const int runs_max = auto_forward.value("max", 0);
    if (given.auto_forward_max && *given.auto_forward_max != runs_max) {
      differ.push_back("--auto-forward-max " + std::to_string(*given.auto_forward_max) +
                       " (it runs " + std::to_string(runs_max) + ")");
    }
  }
  if (given.fast_exec && !running.value("fast_exec", nlohmann::json()).is_object()) {
    differ.push_back("--fast-exec (it runs every command as a session)");
  }
  if (differ.empty()) return std::nullopt;
  const std::string what =
      alias + " is already up; these take effect only when its daemon starts: ";
  return MakeError(
      "up", what + Join(differ, ", ") + "; nothing was changed",
      "to apply them: tether down " + alias + ", then tether up " + alias + " again with them");
}

}  // namespace tether::cli
