#include "cli/complete.h"

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/fs.h"
#include "daemon/state_dir.h"

namespace tether::cli {
namespace {

// ssh's own bound on nested Include (readconf.c's READCONF_MAX_DEPTH); it also ends loops.
constexpr int kMaxIncludeDepth = 16;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// The words of an ssh_config line after its keyword ("Host a b", "Host=a"), quotes dropped.
std::vector<std::string> LineWords(const std::string& line, std::string* keyword) {
  std::string text = line;
  std::replace(text.begin(), text.end(), '=', ' ');
  std::istringstream in(text);
  std::vector<std::string> words;
  std::string w;
  while (in >> w) {
    w.erase(std::remove(w.begin(), w.end(), '"'), w.end());
    if (!w.empty()) words.push_back(w);
  }
  if (words.empty() || words[0][0] == '#') return {};
  *keyword = Lower(words[0]);
  words.erase(words.begin());
  return words;
}

void CollectHosts(const std::string& file, const std::string& ssh_dir, int depth,
                  std::vector<std::string>& out) {
  if (depth > kMaxIncludeDepth) return;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::string keyword;
    std::vector<std::string> words = LineWords(line, &keyword);
    if (keyword == "host") {
      for (const auto& name : words) {
        if (name.find_first_of("*?!") != std::string::npos) continue;
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
      }
    } else if (keyword == "include") {
      for (std::string pattern : words) {
        if (pattern.rfind("~/", 0) == 0) pattern = HomeDir() + pattern.substr(1);
        if (pattern[0] != '/') pattern = ssh_dir + "/" + pattern;
        glob_t g{};
        if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
          for (size_t i = 0; i < g.gl_pathc; ++i)
            CollectHosts(g.gl_pathv[i], ssh_dir, depth + 1, out);
        }
        ::globfree(&g);
      }
    }
  }
}

// The subcommand named by `path` (empty: the app itself); null when there is none.
const CLI::App* Find(const CLI::App& app, const std::vector<std::string>& path) {
  const CLI::App* at = &app;
  for (const auto& name : path) {
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : at->get_subcommands([](const CLI::App*) { return true; })) {
      if (sub->get_name() == name) next = sub;
    }
    if (next == nullptr) return nullptr;
    at = next;
  }
  return at;
}

// One line of text for the shells: a tab or newline in a description would split it.
std::string OneLine(std::string s) {
  std::replace_if(
      s.begin(), s.end(), [](char c) { return c == '\t' || c == '\n'; }, ' ');
  return s;
}

int PrintVerbs(const CLI::App& app, const std::vector<std::string>& path) {
  const CLI::App* at = Find(app, path);
  if (at == nullptr) return 1;
  for (const CLI::App* sub : at->get_subcommands([](const CLI::App*) { return true; })) {
    std::printf("%s\t%s\n", sub->get_name().c_str(), OneLine(sub->get_description()).c_str());
  }
  return 0;
}

int PrintOptions(const CLI::App& app, const std::vector<std::string>& path) {
  const CLI::App* at = Find(app, path);
  if (at == nullptr) return 1;
  for (const CLI::Option* opt : at->get_options()) {
    if (!opt->nonpositional()) continue;
    const char* kind = opt->get_expected_max() == 0 ? "flag" : "value";
    const std::string description = OneLine(opt->get_description());
    for (const auto& s : opt->get_snames()) {
      std::printf("-%s\t%s\t%s\n", s.c_str(), kind, description.c_str());
    }
    for (const auto& l : opt->get_lnames()) {
      std::printf("--%s\t%s\t%s\n", l.c_str(), kind, description.c_str());
    }
  }
  return 0;
}

int PrintHosts(const GlobalOptions& global) {
  const std::string ssh_dir = HomeDir() + "/.ssh";
  std::vector<std::string> hosts = ConfiguredHostNames(
      global.config_file.empty() ? ssh_dir + "/config" : global.config_file, ssh_dir);
  // Only hosts whose daemon holds its lock. A stale file is left for status to report and
  // remove: a completion prints nothing on the terminal.
  if (auto state = daemon::StateDir::Open(); state.ok()) {
    for (const auto& name : state->Hosts()) {
      if (!daemon::CheckRunning(state->PidPath(name)).running) continue;
      if (std::find(hosts.begin(), hosts.end(), name) == hosts.end()) hosts.push_back(name);
    }
  }
  for (const auto& h : hosts) std::printf("%s\n", h.c_str());
  return 0;
}

}  // namespace

std::vector<std::string> ConfiguredHostNames(const std::string& config_file,
                                             const std::string& ssh_dir) {
  std::vector<std::string> out;
  CollectHosts(config_file, ssh_dir, 0, out);
  return out;
}

int RunComplete(const CLI::App& app, const GlobalOptions& global,
                const std::vector<std::string>& args) {
  if (args.empty()) return 2;
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "verbs") return PrintVerbs(app, rest);
  if (args[0] == "options") return PrintOptions(app, rest);
  if (args[0] == "hosts") return PrintHosts(global);
  return 2;
}

}  // namespace tether::cli
