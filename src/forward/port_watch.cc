#include "forward/port_watch.h"

#include <algorithm>

#include "common/log.h"
#include "common/text.h"

namespace tether::forward {
namespace {

constexpr int kStateListen = 0x0A;
// What one answer may hold: the LISTEN lines of both tables, or one command line.
constexpr size_t kMaxAnswer = 1u << 20;
constexpr char kArgSeparator = '\x1f';

bool InAny(const std::vector<PortRange>& ranges, uint16_t port) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [port](const PortRange& r) { return r.Contains(port); });
}

bool UpperEq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) ==
                  std::toupper(static_cast<unsigned char>(y));
         });
}

// Loopback (127.0.0.1, ::1, their mapped forms) or wildcard: what a laptop's 127.0.0.1
// reaches through sshd's connection to localhost. Another address (a public one) is the
// server's business, and reachable without us.
bool LoopbackOrWildcard(const std::string& hex) {
  if (std::all_of(hex.begin(), hex.end(), [](char c) { return c == '0'; })) return true;
  static const std::vector<std::string> kForms = [] {
    auto v = TableForms("127.0.0.1");
    auto six = TableForms("::1");
    v.insert(v.end(), six.begin(), six.end());
    return v;
  }();
  return std::any_of(kForms.begin(), kForms.end(),
                     [&](const std::string& f) { return UpperEq(f, hex); });
}

std::vector<std::string_view> Args(std::string_view cmdline) {
  std::vector<std::string_view> args;
  size_t start = 0;
  while (start <= cmdline.size()) {
    size_t end = cmdline.find(kArgSeparator, start);
    if (end == std::string_view::npos) end = cmdline.size();
    if (end > start) args.push_back(cmdline.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

std::string_view BaseName(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool IsInterpreter(std::string_view name) {
  for (std::string_view p : {"python", "node", "ruby", "perl", "java", "bash", "sh"}) {
    if (name.rfind(p, 0) == 0) return true;
  }
  return false;
}

// Word characters of a token: anything else (a quote, a blank) ends it, so a URL carries
// nothing but the token.
std::string_view TokenPart(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && (std::isalnum(static_cast<unsigned char>(s[n])) != 0 || s[n] == '-' ||
                          s[n] == '_' || s[n] == '.')) {
    ++n;
  }
  return s.substr(0, n);
}

}  // namespace

Result<std::vector<PortRange>> ParsePortRanges(std::string_view text) {
  std::vector<PortRange> out;
  std::string s(text);
  std::replace(s.begin(), s.end(), ',', ' ');
  for (std::string_view word : SplitWords(s)) {
    size_t dash = word.find('-');
    auto first = ParseUint(word.substr(0, dash));
    auto last = dash == std::string_view::npos ? first : ParseUint(word.substr(dash + 1));
    if (!first || !last || *first < 1 || *last > 65535 || *first > *last) {
      return MakeError("config", "bad port or range \"" + std::string(word) + "\"",
                       "ports 1-65535, as 8888 or 8000-8999, separated by commas");
    }
    out.push_back({static_cast<uint16_t>(*first), static_cast<uint16_t>(*last)});
  }
  return out;
}

std::string FormatPortRanges(const std::vector<PortRange>& ranges) {
  std::string out;
  for (const auto& r : ranges) {
    if (!out.empty()) out += ',';
    out += std::to_string(r.first);
    if (r.last != r.first) out += "-" + std::to_string(r.last);
  }
  return out;
}

bool AutoForwardPolicy::Admits(uint16_t port) const {
  if (!allow.empty() && !InAny(allow, port)) return false;
  return !InAny(deny, port);
}

std::vector<ServerListener> ListenersOf(const std::vector<SocketEntry>& table, uint32_t uid) {
  std::map<uint16_t, uint64_t> ports;
  for (const auto& e : table) {
    if (e.state != kStateListen || e.inode == 0 || e.uid != uid || e.local_port == 0) continue;
    if (!LoopbackOrWildcard(e.local_address)) continue;
    ports.emplace(e.local_port, e.inode);
  }
  std::vector<ServerListener> out;
  for (auto [port, inode] : ports) out.push_back({port, inode});
  return out;
}

void AutoForwardPlan::Update(const std::vector<ServerListener>& listening,
                             const std::set<uint16_t>& excluded) {
  std::set<uint16_t> now;
  for (const auto& l : listening) now.insert(l.port);
  // Gone ones first: their laptop ports may serve a new one.
  for (auto it = active_.begin(); it != active_.end();) {
    bool gone = !now.count(it->first) || excluded.count(it->first);
    if (!gone) {
      it->second.missing = 0;
      ++it;
      continue;
    }
    if (excluded.count(it->first) || ++it->second.missing >= kPortWatchMissingReads) {
      sink_.Unbind(it->first);
      it = active_.erase(it);
    } else {
      ++it;
    }
  }
  // A failure is retried once the port went and came back.
  for (auto it = failed_.begin(); it != failed_.end();) {
    it = now.count(*it) ? std::next(it) : failed_.erase(it);
  }
  capped_ = 0;
  for (const auto& l : listening) {
    if (active_.count(l.port) || excluded.count(l.port) || cancelled_.count(l.port) ||
        failed_.count(l.port) || !policy_.Admits(l.port)) {
      continue;
    }
    if (active_.size() >= policy_.max) {
      ++capped_;
      continue;
    }
    if (!Place(l)) failed_.insert(l.port);
  }
}

bool AutoForwardPlan::Place(const ServerListener& listener) {
  std::vector<uint16_t> candidates;
  if (auto it = remembered_.find(listener.port); it != remembered_.end()) {
    candidates.push_back(it->second);
  }
  for (int i = 0; i < kAutoForwardPortTries && listener.port + i <= 65535; ++i) {
    candidates.push_back(static_cast<uint16_t>(listener.port + i));
  }
  for (uint16_t local : candidates) {
    bool ours = std::any_of(active_.begin(), active_.end(),
                            [local](const auto& a) { return a.second.local_port == local; });
    if (ours) continue;
    if (sink_.Bind(listener.port, local, listener.inode)) {
      active_[listener.port] = {local, 0};
      remembered_[listener.port] = local;
      return true;
    }
  }
  return false;
}

void AutoForwardPlan::Cancelled(uint16_t server_port) {
  active_.erase(server_port);
  cancelled_.insert(server_port);
}

std::optional<uint16_t> AutoForwardPlan::LocalPortOf(uint16_t server_port) const {
  auto it = active_.find(server_port);
  if (it == active_.end()) return std::nullopt;
  return it->second.local_port;
}

std::string ProcessName(std::string_view cmdline) {
  auto args = Args(cmdline);
  if (args.empty()) return "";
  std::string_view name = BaseName(args[0]);
  if (IsInterpreter(name)) {
    // python -m vllm.entrypoints...: the module; python /usr/bin/jupyter-lab: the script.
    for (size_t i = 1; i < args.size(); ++i) {
      // python -c CODE: the code is no name (and may hold anything).
      if (args[i] == "-c" || args[i] == "-e") break;
      if (args[i] == "-m" && i + 1 < args.size()) return SanitizeUtf8(args[i + 1].substr(0, 64));
      if (args[i].empty() || args[i][0] == '-') continue;
      return SanitizeUtf8(BaseName(args[i]).substr(0, 64));
    }
  }
  return SanitizeUtf8(name.substr(0, 64));
}

std::string WellKnownUrl(std::string_view cmdline, uint16_t local_port) {
  auto args = Args(cmdline);
  std::string base = "http://127.0.0.1:" + std::to_string(local_port);
  bool jupyter = false, tensorboard = false, vllm = false, gradio = false;
  std::string token;
  for (std::string_view a : args) {
    std::string_view b = BaseName(a);
    if (b.find("jupyter") != std::string_view::npos) jupyter = true;
    if (b.find("tensorboard") != std::string_view::npos) tensorboard = true;
    if (b.find("vllm") != std::string_view::npos) vllm = true;
    if (b.find("gradio") != std::string_view::npos) gradio = true;
    for (std::string_view key :
         {"--NotebookApp.token=", "--ServerApp.token=", "--IdentityProvider.token="}) {
      if (a.rfind(key, 0) == 0) token = std::string(TokenPart(a.substr(key.size())));
    }
  }
  if (jupyter) return base + "/" + (token.empty() ? "" : "?token=" + token);
  if (vllm) return base + "/v1/models";
  if (tensorboard || gradio) return base + "/";
  return "";
}

// The greeting is "uid N", or "none WHY" where the table cannot be read; then "l" prints
// the LISTEN lines of both tables (state 0A: the only " 0A " of a line) and "end"; "cN"
// (digits only) the command line of the process holding socket N, its arguments
// separated by 0x1f, and "end". Searching /proc/*/fd is done only for a new port.
const char* const PortWatch::kCommand =
    "exec sh -c 'if [ ! -r /proc/net/tcp ]; then echo \"none /proc/net/tcp cannot be read\"; "
    "exit 0; fi; echo \"uid $(id -u)\"; while read -r q; do case $q in "
    "l) grep -h \" 0A \" /proc/net/tcp /proc/net/tcp6 2>/dev/null;; "
    "c[0-9]*) i=${q#c}; case $i in *[!0-9]*) ;; *) for d in /proc/[0-9]*; do "
    "if ls -l $d/fd 2>/dev/null | grep -q \"socket:.$i.\\$\"; then "
    "tr \"\\000\" \"\\037\" < $d/cmdline 2>/dev/null; echo; break; fi; done;; esac;; "
    "esac; echo end; done'";

PortWatch::PortWatch(net::EventLoop& loop, Runner run, OnTable on_table, std::string log_prefix)
    : loop_(loop),
      on_table_(std::move(on_table)),
      log_prefix_(log_prefix),
      server_(loop, std::move(run),
              {kCommand, "auto forward", kMaxAnswer, kPortWatchStall, kPortWatchInterval},
              {[this](uint32_t) {
                 Ask({0, nullptr});
               },
               [this](const std::string& why) {
                 unavailable_ = "the server's listening ports cannot be read (" +
                                (why.empty() ? "no /proc/net/tcp" : why) + ")";
                 spdlog::warn("[{}] auto forward: {}", log_prefix_, unavailable_);
                 FailQuestions();
               },
               [this](const std::string& answer) { OnAnswer(answer); },
               [this](const std::string& why, bool silent) { OnStopped(why, silent); }},
              log_prefix) {}

PortWatch::~PortWatch() {
  if (tick_timer_ != 0) loop_.CancelTimer(tick_timer_);
}

void PortWatch::Start() {
  if (tick_timer_ != 0) return;
  Tick();
}

void PortWatch::Tick() {
  tick_timer_ = loop_.AddTimer(kPortWatchInterval, [this] { Tick(); });
  if (!unavailable_.empty()) return;
  if (!server_.running()) return server_.Run();
  if (!server_.greeted()) return;
  // One read at a time: a slow server is read less often, not piled up.
  bool asked = std::any_of(questions_.begin(), questions_.end(),
                           [](const Question& q) { return q.inode == 0; });
  if (!asked) Ask({0, nullptr});
}

void PortWatch::CommandLineOf(uint64_t inode, OnCommandLine done) {
  if (!server_.greeted() || inode == 0) {
    loop_.AddTimer(std::chrono::milliseconds(0), [done = std::move(done)] { done(""); });
    return;
  }
  Ask({inode, std::move(done)});
}

void PortWatch::Ask(Question question) {
  std::string line = question.inode == 0 ? "l\n" : "c" + std::to_string(question.inode) + "\n";
  questions_.push_back(std::move(question));
  server_.Ask(line);  // a failed write ends the run, and OnStopped answers what waits
}

void PortWatch::OnAnswer(const std::string& answer) {
  if (questions_.empty()) {
    server_.Close();
    return OnStopped("the server answered a question not asked", false);
  }
  Question q = std::move(questions_.front());
  questions_.pop_front();
  if (q.inode == 0) {
    on_table_(ParseSocketTable(answer), server_.uid());
  } else if (q.done) {
    std::string cmdline = answer;
    while (!cmdline.empty() && cmdline.back() == '\n') cmdline.pop_back();
    q.done(cmdline);
  }
}

void PortWatch::OnStopped(const std::string& why, bool silent) {
  FailQuestions();
  if (!silent) {
    spdlog::debug("[{}] auto forward: its shell loop stopped: {}", log_prefix_, why);
    return;  // the next tick starts it again
  }
  // A session that never started, or a server that stopped answering.
  spdlog::warn("[{}] auto forward: {}; asking anew", log_prefix_, why);
  server_.Run();
}

void PortWatch::FailQuestions() {
  auto questions = std::move(questions_);
  questions_.clear();
  for (auto& q : questions) {
    if (q.done) {
      loop_.AddTimer(std::chrono::milliseconds(0), [done = std::move(q.done)] { done(""); });
    }
  }
}

}  // namespace tether::forward
