// Reads ssh_config(5) for one destination with the semantics of OpenSSH's readconf.c:
// -o options, then the user's file (or -F), then the system file; Host and Match blocks
// switch lines on and off; the first value obtained for a keyword wins; IdentityFile and the
// *Forward keywords accumulate. Where readconf.c would stop on something we only need to
// read past (an unknown keyword from a newer OpenSSH, Match exec), we keep a note instead.
#include "config/ssh_config.h"

#include <glob.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <utility>

#include "common/fs.h"

namespace tether::config {
namespace {

constexpr std::string_view kStep = "config";
// readconf.c's READCONF_MAX_DEPTH: deeper than any real layout, and it ends Include loops.
constexpr int kMaxIncludeDepth = 16;
constexpr uint16_t kDefaultPort = 22;
constexpr uint32_t kMaxPort = 65535;
// No real ssh_config comes near this; a bigger file is a mistake, not something to load.
constexpr size_t kMaxConfigBytes = size_t{16} << 20;
// Tokens that IdentityFile, UserKnownHostsFile and IdentityAgent accept (ssh_config(5)
// TOKENS, less %C, %f, %H, %I, %K, %t, %T which need state we do not have).
constexpr std::string_view kPathTokens = "dhijkLlnpru";
// HostName accepts only %h (and %%), as in ssh.c.
constexpr std::string_view kHostNameTokens = "h";

char LowerChar(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerChar(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerChar(a[i]) != LowerChar(b[i])) return false;
  }
  return true;
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Shell-style * and ? matching; `fold_case` for host names, which DNS compares without case.
bool MatchGlob(std::string_view pattern, std::string_view text, bool fold_case) {
  auto same = [fold_case](char a, char b) {
    return fold_case ? LowerChar(a) == LowerChar(b) : a == b;
  };
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;
  size_t star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || same(pattern[p], text[t]))) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// match.c match_pattern_list: true when some pattern matches and no !pattern does.
bool MatchList(const std::vector<std::string>& patterns, std::string_view text, bool fold_case) {
  bool matched = false;
  for (const std::string& list : patterns) {
    size_t i = 0;
    while (i < list.size()) {
      size_t end = i;
      while (end < list.size() && list[end] != ',' && !IsBlank(list[end])) ++end;
      std::string_view pattern(list.data() + i, end - i);
      i = end + 1;
      if (pattern.empty()) continue;
      const bool negated = pattern.front() == '!';
      if (negated) pattern.remove_prefix(1);
      if (!MatchGlob(pattern, text, fold_case)) continue;
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

std::string LocalHostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

// Values a %token can stand for. Unset letters are not tokens.
struct Tokens {
  std::string values[128];

  void Set(char letter, std::string value) {
    values[static_cast<unsigned char>(letter) & 0x7f] = std::move(value);
  }
};

// Empty when every %x in `value` is %% or one of `allowed`; otherwise what is wrong.
std::string TokenProblem(std::string_view value, std::string_view allowed) {
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') continue;
    if (i + 1 == value.size()) return "a lone '%' at the end (write %% for a literal %)";
    const char letter = value[++i];
    if (letter == '%' || allowed.find(letter) != std::string_view::npos) continue;
    std::string known;
    for (char c : allowed) known += std::string(" %") + c;
    return "token %" + std::string(1, letter) + " is not supported here (%%" + known + ")";
  }
  return "";
}

// Expands a value TokenProblem accepted.
std::string ExpandTokens(std::string_view value, const Tokens& tokens) {
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%' || i + 1 == value.size()) {
      out += value[i];
      continue;
    }
    const char letter = value[++i];
    if (letter == '%') {
      out += '%';
    } else {
      out += tokens.values[static_cast<unsigned char>(letter) & 0x7f];
    }
  }
  return out;
}

// "~" and "~/x" are the user's home, "~name/x" another user's (misc.c tilde_expand).
Result<std::string> ExpandTilde(std::string_view path, const std::string& home) {
  if (path.empty() || path.front() != '~') return std::string(path);
  const size_t slash = path.find('/');
  const std::string_view name =
      path.substr(1, slash == std::string_view::npos ? path.npos : slash - 1);
  const std::string_view rest = slash == std::string_view::npos ? "" : path.substr(slash);
  if (name.empty()) return home + std::string(rest);
  std::vector<char> buffer;
  const std::string name_z(name);
  auto pw = LookUpUser(name_z.c_str(), 0, buffer);
  if (!pw) return MakeError(std::string(kStep), "no user " + Quoted(name) + " for " + Quoted(path));
  return std::string(pw->pw_dir) + std::string(rest);
}

Result<uint16_t> ParsePortNumber(std::string_view text) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return MakeError(std::string(kStep), Quoted(text) + " is not a port number (1-65535)");
  }
  const uint32_t value = static_cast<uint32_t>(std::stoul(std::string(text)));
  if (value == 0 || value > kMaxPort) {
    return MakeError(std::string(kStep),
                     "port " + std::string(text) + " is out of range (1-65535)");
  }
  return static_cast<uint16_t>(value);
}

std::optional<int> ParseNonNegativeInt(std::string_view text) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// misc.c convtime: "90", "90s", "1m30s", "2h", "1d", "1w"; -1 when malformed.
int64_t ParseSeconds(std::string_view text) {
  constexpr int64_t kMinute = 60;
  constexpr int64_t kHour = 60 * kMinute;
  constexpr int64_t kDay = 24 * kHour;
  constexpr int64_t kWeek = 7 * kDay;
  if (text.empty()) return -1;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t start = i;
    int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + (text[i] - '0');
      if (n > INT32_MAX) return -1;
      ++i;
    }
    if (i == start) return -1;
    int64_t unit = 1;
    if (i < text.size()) {
      switch (text[i]) {
        case 's':
        case 'S':
          break;
        case 'm':
        case 'M':
          unit = kMinute;
          break;
        case 'h':
        case 'H':
          unit = kHour;
          break;
        case 'd':
        case 'D':
          unit = kDay;
          break;
        case 'w':
        case 'W':
          unit = kWeek;
          break;
        default:
          return -1;
      }
      ++i;
    }
    total += n * unit;
    if (total > INT32_MAX) return -1;
  }
  return total;
}

std::optional<bool> ParseYesNo(std::string_view text) {
  const std::string v = ToLower(text);
  if (v == "yes" || v == "true") return true;
  if (v == "no" || v == "false") return false;
  return std::nullopt;
}

std::optional<StrictHostKeyChecking> ParseStrict(std::string_view text) {
  const std::string v = ToLower(text);
  if (v == "yes" || v == "true") return StrictHostKeyChecking::kYes;
  if (v == "no" || v == "false" || v == "off") return StrictHostKeyChecking::kNo;
  if (v == "ask") return StrictHostKeyChecking::kAsk;
  if (v == "accept-new") return StrictHostKeyChecking::kAcceptNew;
  return std::nullopt;
}

struct Environment {
  std::string alias;  // the host as typed, what Host and Match originalhost see
  std::string home;
  std::string local_user;
};

// What the configuration has said so far. An unset optional is still open: the first
// active line that names the keyword fills it, later ones are read and dropped.
struct Obtained {
  std::optional<std::string> hostname;  // %h not yet expanded
  std::optional<std::string> user;
  std::optional<uint16_t> port;
  std::vector<std::string> identity_files;     // ~ expanded, %tokens not yet
  std::vector<std::string> certificate_files;  // likewise
  std::optional<bool> identities_only;
  std::optional<std::vector<std::string>> user_known_hosts_files;
  std::optional<std::vector<std::string>> global_known_hosts_files;
  std::optional<StrictHostKeyChecking> strict_host_key_checking;
  std::optional<std::chrono::seconds> connect_timeout;
  std::optional<bool> batch_mode;
  std::optional<std::vector<std::string>> preferred_authentications;
  std::optional<bool> pubkey_authentication;
  std::optional<bool> kbd_interactive_authentication;
  std::optional<bool> password_authentication;
  std::optional<int> number_of_password_prompts;
  std::optional<std::string> ciphers;
  std::optional<std::string> kex_algorithms;
  std::optional<std::string> host_key_algorithms;
  std::optional<std::string> identity_agent;
  std::optional<std::string> host_key_alias;
  std::optional<std::string> ignore_unknown;
  std::optional<std::string> control_path;
  // ProxyJump and ProxyCommand exclude each other; whichever comes first wins (readconf.c).
  bool proxy_obtained = false;
  std::string proxy_jump_text;  // as written, for %j
  std::vector<std::string> proxy_jump;
  std::string proxy_command;
  std::optional<int> server_alive_interval_s;
  std::optional<int> server_alive_count_max;
  std::optional<bool> clear_all_forwardings;
  std::vector<ForwardSpec> forwards;
  std::vector<std::string> notes;
  // Keyword -> where its first active line is (doctor shows where each value came from).
  std::map<std::string, std::string> sources;
};

template <typename T>
void SetFirst(std::optional<T>& slot, T value, bool active) {
  if (active && !slot) slot = std::move(value);
}

// Where a line came from, for messages: "FILE:LINE" or -o "TEXT".
struct Origin {
  std::string file;
  int line = 0;
  std::string option;

  std::string ToString() const {
    if (file.empty()) return "-o " + Quoted(option);
    return file + ":" + std::to_string(line);
  }
};

// How a file is being read.
struct Scope {
  bool user_config = false;   // relative Include paths live in ~/.ssh, else in /etc/ssh
  bool command_line = false;  // -o: Host, Match and Include make no sense there
  bool never_match = false;   // included from an inactive block: parsed, never applied
  int depth = 0;
};

struct Line {
  Origin origin;
  Scope scope;
  std::string_view keyword;  // canonical spelling
  std::string raw_args;      // after the keyword and its separator, as written
  std::vector<std::string> args;
  bool* active;  // whether the current Host/Match block applies; Host and Match set it
};

class Reader {
 public:
  Reader(const Environment& env, Obtained& got) : env_(env), got_(got) {}

  // One -o option, read as a line of a file with no Host line.
  Status ReadOption(const std::string& option) {
    bool active = true;
    Scope scope;
    scope.command_line = true;
    scope.user_config = true;
    return ProcessLine(option, Origin{"", 0, option}, scope, &active);
  }

  Status ReadTopFile(const std::string& path, bool user_config, bool must_exist) {
    bool active = true;
    Scope scope;
    scope.user_config = user_config;
    return ReadFile(path, scope, &active, must_exist);
  }

 private:
  using Handler = Status (Reader::*)(const Line&);
  struct Rule {
    std::string_view name;
    Handler handler;
  };
  static const Rule kRules[];

  static const Rule* FindRule(std::string_view keyword) {
    for (const Rule* rule = kRules; !rule->name.empty(); ++rule) {
      if (EqualsIgnoreCase(rule->name, keyword)) return rule;
    }
    return nullptr;
  }

  Status ReadFile(const std::string& path, const Scope& scope, bool* active, bool must_exist) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT && !must_exist) return Status::Ok();
      return ErrnoError(std::string(kStep), "cannot read " + path, errno);
    }
    if (!S_ISREG(st.st_mode)) {
      if (!must_exist) return Status::Ok();
      return MakeError(std::string(kStep), path + " is not a regular file");
    }
    if (static_cast<size_t>(st.st_size) > kMaxConfigBytes) {
      return MakeError(std::string(kStep), path + " is too large to be an ssh_config file");
    }
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) return ErrnoError(std::string(kStep), "cannot read " + path, errno);
    std::string text;
    char buf[8192];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && text.size() <= kMaxConfigBytes) {
      text.append(buf, n);
    }
    const bool failed = std::ferror(f) != 0;
    const int read_errno = errno;
    std::fclose(f);
    if (failed) return ErrnoError(std::string(kStep), "cannot read " + path, read_errno);

    int line_number = 0;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      ++line_number;
      Status s = ProcessLine(std::string_view(text).substr(start, end - start),
                             Origin{path, line_number, ""}, scope, active);
      if (!s) return s;
      start = end + 1;
    }
    return Status::Ok();
  }

  Status ProcessLine(std::string_view text, const Origin& origin, const Scope& scope,
                     bool* active) {
    text = Trim(text);
    if (text.empty() || text.front() == '#') return Status::Ok();

    // The keyword ends at whitespace or '='; "Keyword value", "Keyword=value" and
    // "Keyword = value" are all one form (misc.c strdelim).
    size_t end = 0;
    while (end < text.size() && !IsBlank(text[end]) && text[end] != '=') ++end;
    const std::string_view keyword = text.substr(0, end);
    size_t pos = end;
    bool saw_equals = pos < text.size() && text[pos] == '=';
    if (saw_equals) ++pos;
    while (pos < text.size() && IsBlank(text[pos])) ++pos;
    if (!saw_equals && pos < text.size() && text[pos] == '=') {
      ++pos;
      while (pos < text.size() && IsBlank(text[pos])) ++pos;
    }
    if (keyword.empty()) {
      return MakeError(std::string(kStep), origin.ToString() + ": no keyword before '='");
    }

    const Rule* rule = FindRule(keyword);
    if (rule == nullptr) {
      // ssh stops here, but a config written for a newer OpenSSH must still work for us.
      const bool ignored = got_.ignore_unknown &&
                           MatchList({*got_.ignore_unknown}, ToLower(keyword), /*fold_case=*/true);
      if (!ignored) {
        got_.notes.push_back(origin.ToString() + ": unknown keyword " + Quoted(keyword) +
                             " ignored");
      }
      return Status::Ok();
    }

    if (*active && !scope.never_match) got_.sources.emplace(rule->name, origin.ToString());
    Line line{origin, scope, rule->name, std::string(text.substr(pos)), {}, active};
    auto words = SplitConfigWords(line.raw_args);
    if (!words) return Fail(line, "unterminated quote");
    line.args = std::move(*words);
    if (line.args.empty()) return Fail(line, "missing argument");
    return (this->*(rule->handler))(line);
  }

  Error Fail(const Line& line, std::string_view what) const {
    return MakeError(std::string(kStep), line.origin.ToString() + ": " + std::string(line.keyword) +
                                             ": " + std::string(what));
  }

  Status ExpectArgs(const Line& line, size_t max) const {
    if (line.args.size() > max) {
      return Fail(line, "unexpected " + Quoted(line.args[max]) + " after the value");
    }
    return Status::Ok();
  }

  // One non-empty value (readconf.c refuses "" as a value too).
  Status ExpectOne(const Line& line) const {
    if (line.args[0].empty()) return Fail(line, "empty value");
    return ExpectArgs(line, 1);
  }

  void Note(const Line& line, std::string_view what) {
    got_.notes.push_back(line.origin.ToString() + ": " + std::string(line.keyword) + " " +
                         std::string(Trim(line.raw_args)) + ": " + std::string(what));
  }

  // The host Match host compares: HostName as obtained so far, else the alias.
  std::string CurrentHost() const {
    if (!got_.hostname) return env_.alias;
    Tokens tokens;
    tokens.Set('h', env_.alias);
    return ExpandTokens(*got_.hostname, tokens);
  }

  // --- blocks and files ---

  Status OnHost(const Line& line) {
    if (line.scope.command_line) return Fail(line, "a Host block cannot start in -o");
    for (const std::string& pattern : line.args) {
      if (pattern.empty() || pattern == "!") return Fail(line, "empty pattern");
    }
    // Host compares the alias as typed, with case, as readconf.c's match_pattern does.
    *line.active = !line.scope.never_match && MatchList(line.args, env_.alias, false);
    return Status::Ok();
  }

  Status OnMatch(const Line& line) {
    if (line.scope.command_line) return Fail(line, "a Match block cannot start in -o");
    bool result = true;
    int criteria = 0;
    bool only_canonical = true;  // "all" may follow canonical/final, nothing else
    const std::vector<std::string>& a = line.args;
    for (size_t i = 0; i < a.size(); ++i) {
      std::string_view name = a[i];
      const bool negate = !name.empty() && name.front() == '!';
      if (negate) name.remove_prefix(1);
      if (name.empty()) return Fail(line, "empty criterion");
      const std::string lower = ToLower(name);
      if (lower == "all") {
        if (!only_canonical || i + 1 < a.size()) {
          return Fail(line, "'all' cannot be combined with other criteria");
        }
        ++criteria;
        if (negate) result = false;
        break;
      }
      ++criteria;
      // We resolve the configuration once, as ssh's final pass would see it.
      if (lower == "canonical" || lower == "final") {
        if (negate) result = false;
        continue;
      }
      only_canonical = false;
      if (i + 1 >= a.size() || a[i + 1].empty()) {
        return Fail(line, "missing patterns after " + Quoted(a[i]));
      }
      const std::vector<std::string> patterns{a[++i]};
      bool matched = false;
      if (lower == "host") {
        matched = MatchList(patterns, CurrentHost(), true);
      } else if (lower == "originalhost") {
        matched = MatchList(patterns, env_.alias, true);
      } else if (lower == "user") {
        matched = MatchList(patterns, got_.user.value_or(env_.local_user), false);
      } else if (lower == "localuser") {
        matched = MatchList(patterns, env_.local_user, false);
      } else {
        // exec, localnetwork, tagged, sessiontype, ...: we cannot or will not evaluate
        // them, so the block is left out and the user is told.
        if (!line.scope.never_match) {
          got_.notes.push_back(line.origin.ToString() + ": Match " + std::string(name) + " " +
                               Quoted(patterns[0]) + " is not supported; block skipped");
        }
        result = false;
        continue;
      }
      if (matched == negate) result = false;
    }
    if (criteria == 0) return Fail(line, "needs at least one criterion");
    *line.active = !line.scope.never_match && result;
    return Status::Ok();
  }

  Status OnInclude(const Line& line) {
    if (line.scope.command_line) return Fail(line, "Include cannot be used in -o");
    for (const std::string& arg : line.args) {
      if (arg.empty()) return Fail(line, "empty path");
      if (arg.front() == '~' && !line.scope.user_config) {
        return Fail(line, Quoted(arg) + ": '~' is only allowed in the user's own file");
      }
      // Relative paths are anchored where the including file's kind lives (readconf.c).
      std::string path = arg;
      if (arg.front() != '/' && arg.front() != '~') {
        path = (line.scope.user_config ? "~/.ssh/" : "/etc/ssh/") + arg;
      }
      auto expanded = ExpandTilde(path, env_.home);
      if (!expanded) return Fail(line, expanded.error().message);

      glob_t matches{};
      const int rc = glob(expanded->c_str(), 0, nullptr, &matches);
      std::vector<std::string> files;
      if (rc == 0) files.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
      globfree(&matches);
      if (rc != 0 && rc != GLOB_NOMATCH) return Fail(line, "cannot expand " + Quoted(*expanded));

      Scope inner = line.scope;
      inner.depth = line.scope.depth + 1;
      if (inner.depth > kMaxIncludeDepth) {
        return Fail(line, "nested more than 16 files deep (does a file include itself?)");
      }
      // An Include in an inactive block is still read, so its errors show, but a Host or
      // Match inside it must not switch anything on.
      const bool outer_active = *line.active;
      inner.never_match = line.scope.never_match || !outer_active;
      for (const std::string& file : files) {
        Status s = ReadFile(file, inner, line.active, /*must_exist=*/false);
        // A Host or Match inside the included file ends with it.
        *line.active = outer_active;
        if (!s) return s;
      }
    }
    return Status::Ok();
  }

  // --- single values: the first active one wins ---

  Status OnHostName(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    const std::string problem = TokenProblem(line.args[0], kHostNameTokens);
    if (!problem.empty()) return Fail(line, problem);
    SetFirst(got_.hostname, line.args[0], *line.active);
    return Status::Ok();
  }

  Status OnUser(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    SetFirst(got_.user, line.args[0], *line.active);
    return Status::Ok();
  }

  Status OnPort(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    auto port = ParsePortNumber(line.args[0]);
    if (!port) return Fail(line, port.error().message);
    SetFirst(got_.port, *port, *line.active);
    return Status::Ok();
  }

  Status SetFlag(const Line& line, std::optional<bool>& slot) {
    if (Status s = ExpectOne(line); !s) return s;
    auto value = ParseYesNo(line.args[0]);
    if (!value) return Fail(line, Quoted(line.args[0]) + " is not yes or no");
    SetFirst(slot, *value, *line.active);
    return Status::Ok();
  }

  Status OnIdentitiesOnly(const Line& line) { return SetFlag(line, got_.identities_only); }
  Status OnBatchMode(const Line& line) { return SetFlag(line, got_.batch_mode); }
  // ChallengeResponseAuthentication is its old name; both fill one slot (readconf.c).
  Status OnKbdInteractiveAuthentication(const Line& line) {
    return SetFlag(line, got_.kbd_interactive_authentication);
  }
  Status OnPasswordAuthentication(const Line& line) {
    return SetFlag(line, got_.password_authentication);
  }

  // yes, no, and OpenSSH 9's unbound and host-bound, which only choose how the key is
  // bound to the host key: publickey is on for both.
  Status OnPubkeyAuthentication(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    const std::string v = ToLower(line.args[0]);
    if (v == "unbound" || v == "host-bound") {
      SetFirst(got_.pubkey_authentication, true, *line.active);
      return Status::Ok();
    }
    return SetFlag(line, got_.pubkey_authentication);
  }

  Status OnPreferredAuthentications(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    std::vector<std::string> methods;
    std::string_view rest = line.args[0];
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string name = ToLower(rest.substr(0, comma));
      if (name.empty()) return Fail(line, Quoted(line.args[0]) + " has an empty method name");
      methods.push_back(std::move(name));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
    SetFirst(got_.preferred_authentications, std::move(methods), *line.active);
    return Status::Ok();
  }

  Status OnNumberOfPasswordPrompts(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    auto count = ParseNonNegativeInt(line.args[0]);
    if (!count) return Fail(line, Quoted(line.args[0]) + " is not a count");
    SetFirst(got_.number_of_password_prompts, *count, *line.active);
    return Status::Ok();
  }
  Status OnClearAllForwardings(const Line& line) {
    return SetFlag(line, got_.clear_all_forwardings);
  }

  Status OnStrictHostKeyChecking(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    auto value = ParseStrict(line.args[0]);
    if (!value) {
      return Fail(line, Quoted(line.args[0]) + " is not yes, no, ask or accept-new");
    }
    SetFirst(got_.strict_host_key_checking, *value, *line.active);
    return Status::Ok();
  }

  Status OnConnectTimeout(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    const int64_t seconds = ToLower(line.args[0]) == "none" ? 0 : ParseSeconds(line.args[0]);
    if (seconds < 0) {
      return Fail(line, Quoted(line.args[0]) + " is not a time (seconds, or e.g. 30s, 1m)");
    }
    SetFirst(got_.connect_timeout, std::chrono::seconds(seconds), *line.active);
    return Status::Ok();
  }

  Status OnServerAliveInterval(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    const int64_t seconds = ParseSeconds(line.args[0]);
    if (seconds < 0) {
      return Fail(line, Quoted(line.args[0]) + " is not a time (seconds, or e.g. 30s, 1m)");
    }
    SetFirst(got_.server_alive_interval_s, static_cast<int>(seconds), *line.active);
    return Status::Ok();
  }

  Status OnServerAliveCountMax(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    auto count = ParseNonNegativeInt(line.args[0]);
    if (!count) return Fail(line, Quoted(line.args[0]) + " is not a count");
    SetFirst(got_.server_alive_count_max, *count, *line.active);
    return Status::Ok();
  }

  Status SetVerbatim(const Line& line, std::optional<std::string>& slot) {
    if (Status s = ExpectOne(line); !s) return s;
    SetFirst(slot, line.args[0], *line.active);
    return Status::Ok();
  }

  Status OnCiphers(const Line& line) { return SetVerbatim(line, got_.ciphers); }
  Status OnKexAlgorithms(const Line& line) { return SetVerbatim(line, got_.kex_algorithms); }
  Status OnHostKeyAlgorithms(const Line& line) {
    return SetVerbatim(line, got_.host_key_algorithms);
  }
  Status OnIgnoreUnknown(const Line& line) { return SetVerbatim(line, got_.ignore_unknown); }
  // Expanded once the destination is known (config/control_path.h): its ~ is the password
  // database's, not $HOME, and its tokens depend on the OpenSSH release.
  Status OnControlPath(const Line& line) { return SetVerbatim(line, got_.control_path); }

  Status OnHostKeyAlias(const Line& line) { return SetVerbatim(line, got_.host_key_alias); }

  // A path that takes ~ and %tokens: ~ now (it does not depend on later lines), tokens at
  // the end, once HostName, User and Port are known.
  Result<std::string> CheckPath(const Line& line, const std::string& value) const {
    const std::string problem = TokenProblem(value, kPathTokens);
    if (!problem.empty()) return Fail(line, Quoted(value) + ": " + problem);
    auto expanded = ExpandTilde(value, env_.home);
    if (!expanded) return Fail(line, expanded.error().message);
    return expanded;
  }

  Status OnIdentityAgent(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    std::string value = line.args[0];
    if (value == "SSH_AUTH_SOCK") {
      value.clear();  // the header's "" means: use $SSH_AUTH_SOCK
    } else if (value != "none" && value.front() != '$') {
      auto path = CheckPath(line, value);
      if (!path) return path.take_error();
      value = *path;
    }
    SetFirst(got_.identity_agent, value, *line.active);
    return Status::Ok();
  }

  Status OnProxyJump(const Line& line) {
    if (Status s = ExpectOne(line); !s) return s;
    const std::string& text = line.args[0];
    std::vector<std::string> hops;
    if (ToLower(text) != "none") {
      size_t start = 0;
      while (start <= text.size()) {
        size_t comma = text.find(',', start);
        if (comma == std::string::npos) comma = text.size();
        const std::string hop = text.substr(start, comma - start);
        auto parsed = ParseDestination(hop);
        if (!parsed) return Fail(line, "hop " + Quoted(hop) + ": " + parsed.error().message);
        hops.push_back(hop);
        start = comma + 1;
      }
    }
    if (*line.active && !got_.proxy_obtained) {
      got_.proxy_obtained = true;
      got_.proxy_jump = std::move(hops);
      got_.proxy_jump_text = ToLower(text) == "none" ? "" : text;
    }
    return Status::Ok();
  }

  Status OnProxyCommand(const Line& line) {
    // The rest of the line is a shell command, passed on as written (readconf.c).
    const std::string command(Trim(line.raw_args));
    if (*line.active && !got_.proxy_obtained) {
      got_.proxy_obtained = true;
      got_.proxy_command = ToLower(command) == "none" ? "" : command;
    }
    return Status::Ok();
  }

  // --- lists ---

  Status OnIdentityFile(const Line& line) { return AddPath(line, got_.identity_files); }
  Status OnCertificateFile(const Line& line) { return AddPath(line, got_.certificate_files); }
  // IdentityFile and CertificateFile: every active line adds one path, once.
  Status AddPath(const Line& line, std::vector<std::string>& files) {
    if (Status s = ExpectOne(line); !s) return s;
    auto path = CheckPath(line, line.args[0]);
    if (!path) return path.take_error();
    if (*line.active && std::find(files.begin(), files.end(), *path) == files.end()) {
      files.push_back(*path);
    }
    return Status::Ok();
  }

  // UserKnownHostsFile and GlobalKnownHostsFile: a list on one line; the first line wins.
  Status SetPathList(const Line& line, std::optional<std::vector<std::string>>& slot) {
    std::vector<std::string> paths;
    for (const std::string& arg : line.args) {
      if (arg.empty()) return Fail(line, "empty path");
      if (arg == "none") {
        paths.push_back(arg);
        continue;
      }
      auto path = CheckPath(line, arg);
      if (!path) return path.take_error();
      paths.push_back(*path);
    }
    SetFirst(slot, std::move(paths), *line.active);
    return Status::Ok();
  }

  Status OnUserKnownHostsFile(const Line& line) {
    return SetPathList(line, got_.user_known_hosts_files);
  }
  Status OnGlobalKnownHostsFile(const Line& line) {
    return SetPathList(line, got_.global_known_hosts_files);
  }

  Status AddForward(const Line& line, ForwardKind kind) {
    auto spec = ParseForwardConfigArgs(kind, line.raw_args);
    if (!spec) {
      return MakeError(std::string(kStep), line.origin.ToString() + ": " + spec.error().message);
    }
    auto& forwards = got_.forwards;
    // ssh drops a forward that repeats an earlier one (readconf.c add_local_forward).
    if (*line.active && std::find(forwards.begin(), forwards.end(), *spec) == forwards.end()) {
      forwards.push_back(*spec);
    }
    return Status::Ok();
  }

  Status OnLocalForward(const Line& line) { return AddForward(line, ForwardKind::kLocal); }
  Status OnRemoteForward(const Line& line) { return AddForward(line, ForwardKind::kRemote); }
  Status OnDynamicForward(const Line& line) { return AddForward(line, ForwardKind::kDynamic); }

  // A keyword OpenSSH knows and tether does not act on.
  Status OnUnused(const Line& line) {
    if (*line.active) Note(line, "not used by tether");
    return Status::Ok();
  }

  const Environment& env_;
  Obtained& got_;
};

// Every ssh_config(5) keyword of OpenSSH 9.x (and Debian's GSSAPI additions and the
// deprecated spellings readconf.c still accepts). Those without a handler of their own are
// read and noted. Ends with an empty name.
const Reader::Rule Reader::kRules[] = {
    {"Host", &Reader::OnHost},
    {"Match", &Reader::OnMatch},
    {"Include", &Reader::OnInclude},
    {"HostName", &Reader::OnHostName},
    {"User", &Reader::OnUser},
    {"Port", &Reader::OnPort},
    {"IdentityFile", &Reader::OnIdentityFile},
    {"CertificateFile", &Reader::OnCertificateFile},
    {"IdentitiesOnly", &Reader::OnIdentitiesOnly},
    {"UserKnownHostsFile", &Reader::OnUserKnownHostsFile},
    {"GlobalKnownHostsFile", &Reader::OnGlobalKnownHostsFile},
    {"StrictHostKeyChecking", &Reader::OnStrictHostKeyChecking},
    {"ConnectTimeout", &Reader::OnConnectTimeout},
    {"BatchMode", &Reader::OnBatchMode},
    {"Ciphers", &Reader::OnCiphers},
    {"KexAlgorithms", &Reader::OnKexAlgorithms},
    {"HostKeyAlgorithms", &Reader::OnHostKeyAlgorithms},
    {"IdentityAgent", &Reader::OnIdentityAgent},
    {"ProxyJump", &Reader::OnProxyJump},
    {"ProxyCommand", &Reader::OnProxyCommand},
    {"ServerAliveInterval", &Reader::OnServerAliveInterval},
    {"ServerAliveCountMax", &Reader::OnServerAliveCountMax},
    {"LocalForward", &Reader::OnLocalForward},
    {"RemoteForward", &Reader::OnRemoteForward},
    {"DynamicForward", &Reader::OnDynamicForward},
    {"ClearAllForwardings", &Reader::OnClearAllForwardings},
    {"IgnoreUnknown", &Reader::OnIgnoreUnknown},
    {"HostKeyAlias", &Reader::OnHostKeyAlias},
    {"AddKeysToAgent", &Reader::OnUnused},
    {"AddressFamily", &Reader::OnUnused},
    {"BindAddress", &Reader::OnUnused},
    {"BindInterface", &Reader::OnUnused},
    {"CanonicalDomains", &Reader::OnUnused},
    {"CanonicalizeFallbackLocal", &Reader::OnUnused},
    {"CanonicalizeHostname", &Reader::OnUnused},
    {"CanonicalizeMaxDots", &Reader::OnUnused},
    {"CanonicalizePermittedCNAMEs", &Reader::OnUnused},
    {"CASignatureAlgorithms", &Reader::OnUnused},
    {"ChallengeResponseAuthentication", &Reader::OnKbdInteractiveAuthentication},
    {"ChannelTimeout", &Reader::OnUnused},
    {"CheckHostIP", &Reader::OnUnused},
    {"Cipher", &Reader::OnUnused},
    {"Compression", &Reader::OnUnused},
    {"CompressionLevel", &Reader::OnUnused},
    {"ConnectionAttempts", &Reader::OnUnused},
    {"ControlMaster", &Reader::OnUnused},
    {"ControlPath", &Reader::OnControlPath},
    {"ControlPersist", &Reader::OnUnused},
    {"DSAAuthentication", &Reader::OnUnused},
    {"EnableEscapeCommandline", &Reader::OnUnused},
    {"EnableSSHKeysign", &Reader::OnUnused},
    {"EscapeChar", &Reader::OnUnused},
    {"ExitOnForwardFailure", &Reader::OnUnused},
    {"FallBackToRsh", &Reader::OnUnused},
    {"FingerprintHash", &Reader::OnUnused},
    {"ForkAfterAuthentication", &Reader::OnUnused},
    {"ForwardAgent", &Reader::OnUnused},
    {"ForwardX11", &Reader::OnUnused},
    {"ForwardX11Timeout", &Reader::OnUnused},
    {"ForwardX11Trusted", &Reader::OnUnused},
    {"GatewayPorts", &Reader::OnUnused},
    {"GSSAPIAuthentication", &Reader::OnUnused},
    {"GSSAPIClientIdentity", &Reader::OnUnused},
    {"GSSAPIDelegateCredentials", &Reader::OnUnused},
    {"GSSAPIKeyExchange", &Reader::OnUnused},
    {"GSSAPIKexAlgorithms", &Reader::OnUnused},
    {"GSSAPIRenewalForcesRekey", &Reader::OnUnused},
    {"GSSAPIServerIdentity", &Reader::OnUnused},
    {"GSSAPITrustDns", &Reader::OnUnused},
    {"HashKnownHosts", &Reader::OnUnused},
    {"HostbasedAcceptedAlgorithms", &Reader::OnUnused},
    {"HostbasedAuthentication", &Reader::OnUnused},
    {"HostbasedKeyTypes", &Reader::OnUnused},
    {"IPQoS", &Reader::OnUnused},
    {"KbdInteractiveAuthentication", &Reader::OnKbdInteractiveAuthentication},
    {"KbdInteractiveDevices", &Reader::OnUnused},
    {"KnownHostsCommand", &Reader::OnUnused},
    {"LocalCommand", &Reader::OnUnused},
    {"LogLevel", &Reader::OnUnused},
    {"LogVerbose", &Reader::OnUnused},
    {"MACs", &Reader::OnUnused},
    {"NoHostAuthenticationForLocalhost", &Reader::OnUnused},
    {"NumberOfPasswordPrompts", &Reader::OnNumberOfPasswordPrompts},
    {"ObscureKeystrokeTiming", &Reader::OnUnused},
    {"PasswordAuthentication", &Reader::OnPasswordAuthentication},
    {"PermitLocalCommand", &Reader::OnUnused},
    {"PermitRemoteOpen", &Reader::OnUnused},
    {"PKCS11Provider", &Reader::OnUnused},
    {"PreferredAuthentications", &Reader::OnPreferredAuthentications},
    {"Protocol", &Reader::OnUnused},
    {"ProxyUseFdpass", &Reader::OnUnused},
    {"PubkeyAcceptedAlgorithms", &Reader::OnUnused},
    {"PubkeyAcceptedKeyTypes", &Reader::OnUnused},
    {"PubkeyAuthentication", &Reader::OnPubkeyAuthentication},
    {"RekeyLimit", &Reader::OnUnused},
    {"RemoteCommand", &Reader::OnUnused},
    {"RequestTTY", &Reader::OnUnused},
    {"RequiredRSASize", &Reader::OnUnused},
    {"RevokedHostKeys", &Reader::OnUnused},
    {"RhostsRSAAuthentication", &Reader::OnUnused},
    {"RSAAuthentication", &Reader::OnUnused},
    {"SecurityKeyProvider", &Reader::OnUnused},
    {"SendEnv", &Reader::OnUnused},
    {"SessionType", &Reader::OnUnused},
    {"SetEnv", &Reader::OnUnused},
    {"SmartcardDevice", &Reader::OnUnused},
    {"StdinNull", &Reader::OnUnused},
    {"StreamLocalBindMask", &Reader::OnUnused},
    {"StreamLocalBindUnlink", &Reader::OnUnused},
    {"SyslogFacility", &Reader::OnUnused},
    {"Tag", &Reader::OnUnused},
    {"TCPKeepAlive", &Reader::OnUnused},
    {"Tunnel", &Reader::OnUnused},
    {"TunnelDevice", &Reader::OnUnused},
    {"UpdateHostKeys", &Reader::OnUnused},
    {"UseKeychain", &Reader::OnUnused},
    {"UsePrivilegedPort", &Reader::OnUnused},
    {"UseRoaming", &Reader::OnUnused},
    {"VerifyHostKeyDNS", &Reader::OnUnused},
    {"VersionAddendum", &Reader::OnUnused},
    {"VisualHostKey", &Reader::OnUnused},
    {"XAuthLocation", &Reader::OnUnused},
    {"", nullptr},
};

Result<Environment> MakeEnvironment(const Destination& destination, const ReadOptions& options) {
  Environment env;
  env.alias = destination.host;
  env.home = options.home;
  env.local_user = options.local_user;
  if (env.home.empty() || env.local_user.empty()) {
    std::vector<char> buffer;
    auto pw = LookUpUser(nullptr, geteuid(), buffer);
    if (env.home.empty()) {
      const char* home = std::getenv("HOME");
      if (home != nullptr && *home != '\0') {
        env.home = home;
      } else if (pw) {
        env.home = pw->pw_dir;
      }
    }
    if (env.local_user.empty() && pw) env.local_user = pw->pw_name;
  }
  if (env.home.empty()) {
    return MakeError(std::string(kStep), "cannot find the home directory",
                     "set $HOME or pass the home directory explicitly");
  }
  if (env.local_user.empty()) {
    return MakeError(std::string(kStep), "cannot find the local user name (no passwd entry)");
  }
  return env;
}

HostConfig Finish(const Environment& env, Obtained& got) {
  HostConfig hc;
  hc.alias = env.alias;
  Tokens tokens;
  tokens.Set('h', env.alias);
  std::string hostname = got.hostname ? ExpandTokens(*got.hostname, tokens) : env.alias;
  // ssh lowercases names (not addresses, whose %scope may be case-sensitive).
  if (hostname.find(':') == std::string::npos) hostname = ToLower(hostname);
  hc.hostname = hostname;
  hc.user = got.user.value_or(env.local_user);
  hc.port = got.port.value_or(kDefaultPort);

  const std::string local_host = LocalHostname();
  tokens.Set('d', env.home);
  tokens.Set('h', hc.hostname);
  tokens.Set('i', std::to_string(getuid()));
  tokens.Set('j', got.proxy_jump_text);
  tokens.Set('k', got.host_key_alias.value_or(env.alias));
  tokens.Set('L', local_host.substr(0, local_host.find('.')));
  tokens.Set('l', local_host);
  tokens.Set('n', env.alias);
  tokens.Set('p', std::to_string(hc.port));
  tokens.Set('r', hc.user);
  tokens.Set('u', env.local_user);
  auto expand_all = [&tokens](const std::vector<std::string>& paths) {
    std::vector<std::string> out;
    for (const std::string& p : paths) out.push_back(p == "none" ? p : ExpandTokens(p, tokens));
    return out;
  };

  hc.identity_files_default = got.identity_files.empty();
  if (hc.identity_files_default) {
    for (const char* name : {"id_ed25519", "id_ecdsa", "id_rsa"}) {
      hc.identity_files.push_back(env.home + "/.ssh/" + name);
    }
  } else {
    hc.identity_files = expand_all(got.identity_files);
  }
  hc.certificate_files = expand_all(got.certificate_files);
  hc.identities_only = got.identities_only.value_or(false);
  hc.host_key_alias = got.host_key_alias.value_or("");
  hc.user_known_hosts_files = got.user_known_hosts_files
                                  ? expand_all(*got.user_known_hosts_files)
                                  : std::vector<std::string>{env.home + "/.ssh/known_hosts",
                                                             env.home + "/.ssh/known_hosts2"};
  hc.global_known_hosts_files =
      got.global_known_hosts_files
          ? expand_all(*got.global_known_hosts_files)
          : std::vector<std::string>{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"};
  hc.strict_host_key_checking = got.strict_host_key_checking.value_or(StrictHostKeyChecking::kAsk);
  hc.connect_timeout = got.connect_timeout.value_or(std::chrono::seconds{0});
  hc.batch_mode = got.batch_mode.value_or(false);
  hc.preferred_authentications = got.preferred_authentications.value_or(std::vector<std::string>{});
  hc.pubkey_authentication = got.pubkey_authentication.value_or(true);
  hc.kbd_interactive_authentication = got.kbd_interactive_authentication.value_or(true);
  hc.password_authentication = got.password_authentication.value_or(true);
  hc.number_of_password_prompts = got.number_of_password_prompts.value_or(3);
  hc.ciphers = got.ciphers.value_or("");
  hc.kex_algorithms = got.kex_algorithms.value_or("");
  hc.host_key_algorithms = got.host_key_algorithms.value_or("");
  const std::string agent = got.identity_agent.value_or("");
  hc.identity_agent = agent == "none" || agent.empty() || agent.front() == '$'
                          ? agent
                          : ExpandTokens(agent, tokens);
  hc.proxy_jump = got.proxy_jump;
  hc.proxy_command = got.proxy_command;
  hc.control_path = got.control_path.value_or("");
  hc.sources = got.sources;
  hc.server_alive_interval_s = got.server_alive_interval_s.value_or(0);
  hc.server_alive_count_max = got.server_alive_count_max.value_or(3);
  if (!got.clear_all_forwardings.value_or(false)) hc.forwards = std::move(got.forwards);
  hc.notes = std::move(got.notes);
  return hc;
}

bool HasUnsafeCharacter(std::string_view s) {
  // Names end up in ProxyCommand-style command lines and in logs; ssh refuses these too
  // (misc.c valid_hostname / ssh.c valid_ruser).
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || IsBlank(c)) return true;
    if (std::string_view("'`\"$\\;&<>|(){}").find(c) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

bool MatchPattern(std::string_view pattern, std::string_view text) {
  return MatchGlob(pattern, text, false);
}

bool MatchPatternList(const std::vector<std::string>& patterns, std::string_view text) {
  return MatchList(patterns, text, false);
}

Result<Destination> ParseDestination(std::string_view text) {
  const std::string shown = Quoted(text);
  auto fail = [&shown](std::string_view what) {
    return MakeError(std::string(kStep), "destination " + shown + ": " + std::string(what),
                     "write it as [user@]host[:port]; IPv6 as [::1] or user@[::1]:2222");
  };
  std::string_view rest = text;
  // ssh also takes ssh://[user@]host[:port], with no path.
  if (rest.substr(0, 6) == "ssh://") {
    rest.remove_prefix(6);
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find('/') != std::string_view::npos) return fail("an ssh:// destination has no path");
  }
  if (rest.empty()) return fail("empty");
  Destination d;
  const size_t at = rest.rfind('@');
  if (at != std::string_view::npos) {
    d.user = std::string(rest.substr(0, at));
    rest.remove_prefix(at + 1);
    if (d.user.empty()) return fail("empty user name before '@'");
    if (d.user.front() == '-' || HasUnsafeCharacter(d.user)) {
      return fail("user name " + Quoted(d.user) + " has characters ssh does not allow");
    }
  }
  std::string_view port;
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return fail("unbalanced '['");
    d.host = std::string(rest.substr(1, close - 1));
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("unexpected text after ']'");
      port = after.substr(1);
      has_port = true;
    }
  } else if (std::count(rest.begin(), rest.end(), ':') == 1) {
    const size_t colon = rest.find(':');
    d.host = std::string(rest.substr(0, colon));
    port = rest.substr(colon + 1);
    has_port = true;
  } else {
    // No colon, or more than one without brackets: a bare IPv6 address and no port.
    d.host = std::string(rest);
  }
  if (d.host.empty()) return fail("empty host");
  if (d.host.front() == '-' || HasUnsafeCharacter(d.host) ||
      d.host.find_first_of("[]@/") != std::string::npos) {
    return fail("host " + Quoted(d.host) + " has characters ssh does not allow");
  }
  if (has_port) {
    if (port.empty()) return fail("empty port after ':'");
    auto p = ParsePortNumber(port);
    if (!p) return fail(p.error().message);
    d.port = *p;
  }
  return d;
}

Result<HostConfig> ReadHostConfig(std::string_view destination, const ReadOptions& options) {
  auto dest = ParseDestination(destination);
  if (!dest) return dest.take_error();
  auto env = MakeEnvironment(*dest, options);
  if (!env) return env.take_error();

  Obtained got;
  // What the destination says was obtained first, so it wins over every file, as ssh's
  // command line does (and Match user sees it).
  if (!dest->user.empty()) {
    got.user = dest->user;
    got.sources["User"] = "the destination";
  }
  if (dest->port != 0) {
    got.port = dest->port;
    got.sources["Port"] = "the destination";
  }

  Reader reader(*env, got);
  for (const std::string& option : options.options) {
    Status s = reader.ReadOption(option);
    if (!s) return s.take_error();
  }
  if (!options.config_file.empty()) {
    // ssh -F: only this file, it must exist, and it counts as the user's own.
    Status s = reader.ReadTopFile(options.config_file, /*user_config=*/true, /*must_exist=*/true);
    if (!s) return s.take_error();
  } else {
    Status s = reader.ReadTopFile(env->home + "/.ssh/config", true, false);
    if (!s) return s.take_error();
    if (!options.system_config.empty()) {
      s = reader.ReadTopFile(options.system_config, false, false);
      if (!s) return s.take_error();
    }
  }
  return Finish(*env, got);
}

}  // namespace tether::config

namespace tether::config {
namespace {

// The hops to `hops.back()`, reached through the hops before it: appended to `chain` in
// connection order.
Status AppendChain(const std::vector<std::string>& hops, const ReadOptions& options, int depth,
                   std::vector<HostConfig>& chain) {
  if (hops.empty()) return Status::Ok();
  if (depth >= kMaxJumpHops) {
    return MakeError("config", "ProxyJump goes deeper than " + std::to_string(kMaxJumpHops) +
                                   " hops (a loop in the configuration?)");
  }
  // The -o options of the command line are for the destination, not its jump hosts.
  ReadOptions hop_options = options;
  hop_options.options.clear();
  auto last = ReadHostConfig(hops.back(), hop_options);
  if (!last.ok()) {
    Error e = last.take_error();
    e.message = "jump host " + hops.back() + ": " + e.message;
    return e;
  }
  last->alias = hops.back();
  // `ProxyJump a,b`: b is reached through a whatever b's own configuration says, as
  // `ssh -J a b` would; with one hop, that hop's own ProxyJump applies.
  std::vector<std::string> before(hops.begin(), hops.end() - 1);
  if (hops.size() == 1) before = last->proxy_jump;
  if (!last->proxy_command.empty() && before.empty()) {
    return MakeError("config", "jump host " + hops.back() + ": ProxyCommand is not supported",
                     "use ProxyJump instead");
  }
  Status s = AppendChain(before, options, depth + 1, chain);
  if (!s.ok()) return s;
  last->proxy_jump.clear();
  chain.push_back(std::move(*last));
  return Status::Ok();
}

}  // namespace

Status ResolveJumpChain(HostConfig& host, const ReadOptions& options) {
  host.jump_chain.clear();
  return AppendChain(host.proxy_jump, options, 0, host.jump_chain);
}

}  // namespace tether::config
