#include "config/control_path.h"

#include <openssl/evp.h>
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <vector>

#include "common/fs.h"
#include "common/process.h"
#include "common/unique_fd.h"

namespace tether::config {
namespace {

constexpr std::string_view kStep = "config";
// ControlPath's tokens in every release we know (sshconnect.h), %j from 9.6.
constexpr std::string_view kTokensBefore96 = "CdhiklLnpru";
constexpr std::string_view kTokensFrom96 = "CdhijklLnpru";
// `ssh -V` prints one line and exits; one that takes longer is not an ssh we can ask.
constexpr std::chrono::milliseconds kVersionTimeout{2000};
constexpr size_t kMaxVersionOutput = 4096;

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::optional<int> LeadingNumber(std::string_view text, size_t* pos) {
  const size_t start = *pos;
  int value = 0;
  while (*pos < text.size() && text[*pos] >= '0' && text[*pos] <= '9' && *pos - start < 4) {
    value = value * 10 + (text[*pos] - '0');
    ++*pos;
  }
  if (*pos == start) return std::nullopt;
  return value;
}

}  // namespace

std::optional<OpenSshVersion> ParseOpenSshVersion(std::string_view text) {
  constexpr std::string_view kPrefix = "OpenSSH_";
  const size_t at = text.find(kPrefix);
  if (at == std::string_view::npos) return std::nullopt;
  size_t pos = at + kPrefix.size();
  auto major = LeadingNumber(text, &pos);
  if (!major || pos >= text.size() || text[pos] != '.') return std::nullopt;
  ++pos;
  auto minor = LeadingNumber(text, &pos);
  if (!minor) return std::nullopt;
  return OpenSshVersion{*major, *minor};
}

std::optional<OpenSshVersion> DetectOpenSshVersion() {
  ProcessOptions options;
  options.timeout = kVersionTimeout;
  options.stderr_with_stdout = true;  // ssh -V says it on stderr
  options.max_output = kMaxVersionOutput;
  ProcessResult r = RunProcess({"ssh", "-V"}, options);
  if (!r.started) return std::nullopt;
  return ParseOpenSshVersion(r.out);
}

Result<LocalIdentity> CurrentIdentity() {
  std::vector<char> buffer;
  auto pw = LookUpUser(nullptr, ::getuid(), buffer);
  if (!pw) {
    return MakeError(std::string(kStep), "no password database entry for uid " +
                                             std::to_string(::getuid()) +
                                             " (ssh needs one too, for ~ and %d in ControlPath)");
  }
  LocalIdentity id;
  id.home = pw->pw_dir;
  id.user = pw->pw_name;
  id.uid = pw->pw_uid;
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) {
    return ErrnoError(std::string(kStep), "gethostname", errno);
  }
  id.hostname = name;
  return id;
}

std::string ConnectionHash(const OpenSshVersion& version, std::string_view local_hostname,
                           std::string_view host, std::string_view port, std::string_view user,
                           std::string_view jump_host) {
  std::string input;
  input.append(local_hostname).append(host).append(port).append(user);
  if (version.AtLeast(OpenSshVersion::WithJumpHost())) input.append(jump_host);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha1(), nullptr) != 1) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xf];
  }
  return hex;
}

std::string JumpHostOf(const HostConfig& host) {
  if (host.proxy_jump.empty()) return "";
  auto last = ParseDestination(host.proxy_jump.back());
  return last.ok() ? last->host : "";
}

ControlPathExpander::ControlPathExpander(LocalIdentity identity, OpenSshVersion version,
                                         GetEnv getenv)
    : identity_(std::move(identity)), version_(version), getenv_(std::move(getenv)) {
  if (!getenv_) getenv_ = [](const char* name) { return std::getenv(name); };
}

std::string ControlPathExpander::Tokens() const {
  return std::string(version_.AtLeast(OpenSshVersion::WithJumpHost()) ? kTokensFrom96
                                                                      : kTokensBefore96);
}

// misc.c tilde_expand: "~" and "~/x" are the passwd entry of our uid, "~user/x" that
// user's; the home gets one '/' and the slashes after the ~ part are squeezed.
Result<std::string> ControlPathExpander::ExpandTilde(std::string_view path) const {
  if (path.empty() || path.front() != '~') return std::string(path);
  std::string_view rest = path.substr(1);
  std::string home = identity_.home;
  if (!rest.empty() && rest.front() != '/') {
    const size_t slash = rest.find('/');
    const std::string name(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? "" : rest.substr(slash);
    std::vector<char> buffer;
    auto pw = LookUpUser(name.c_str(), 0, buffer);
    if (!pw)
      return MakeError(std::string(kStep),
                       "ControlPath " + Quoted(path) + ": no user " + Quoted(name));
    home = pw->pw_dir;
  }
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  if (home.empty() || home.back() != '/') home += '/';
  return home + std::string(rest);
}

Result<std::string> ControlPathExpander::Expand(std::string_view control_path,
                                                const HostConfig& host) const {
  auto fail = [&control_path](const std::string& what) {
    return MakeError(std::string(kStep), "ControlPath " + Quoted(control_path) + ": " + what,
                     "ssh refuses it too; fix the line in ssh_config");
  };
  auto tilded = ExpandTilde(control_path);
  if (!tilded.ok()) return tilded.take_error();
  const std::string& text = *tilded;

  const std::string port = std::to_string(host.port);
  const std::string jump = JumpHostOf(host);
  const std::string tokens = Tokens();
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      const size_t close = text.find('}', i + 2);
      if (close == std::string::npos) return fail("${ has no closing }");
      const std::string name = text.substr(i + 2, close - i - 2);
      if (name.empty()) return fail("an empty ${}");
      const char* value = getenv_(name.c_str());
      if (value == nullptr) return fail("${" + name + "} is not set");
      out += value;
      i = close;
      continue;
    }
    if (c != '%') {
      out += c;
      continue;
    }
    if (i + 1 == text.size()) return fail("a lone '%' at the end (write %% for a literal %)");
    const char letter = text[++i];
    if (letter == '%') {
      out += '%';
      continue;
    }
    if (tokens.find(letter) == std::string::npos) {
      std::string known = "%%";
      for (char t : tokens) known += std::string(" %") + t;
      return fail("%" + std::string(1, letter) + " is not a ControlPath token of OpenSSH " +
                  std::to_string(version_.major) + "." + std::to_string(version_.minor) + " (" +
                  known + ")");
    }
    switch (letter) {
      case 'C':
        out += ConnectionHash(version_, identity_.hostname, host.hostname, port, host.user, jump);
        break;
      case 'd':
        out += identity_.home;
        break;
      case 'h':
        out += host.hostname;
        break;
      case 'i':
        out += std::to_string(identity_.uid);
        break;
      case 'j':
        out += jump;
        break;
      case 'k':
        out += host.host_key_alias.empty() ? host.alias : host.host_key_alias;
        break;
      case 'L':
        out += identity_.hostname.substr(0, identity_.hostname.find('.'));
        break;
      case 'l':
        out += identity_.hostname;
        break;
      case 'n':
        out += host.alias;
        break;
      case 'p':
        out += port;
        break;
      case 'r':
        out += host.user;
        break;
      case 'u':
        out += identity_.user;
        break;
      default:
        break;
    }
  }
  return out;
}

}  // namespace tether::config
