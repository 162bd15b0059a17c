#include "cli/ssh_args.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>

#include "config/ssh_config.h"

namespace tether::cli {
namespace {

// ssh(1)'s options that take a value (OpenSSH 9: "B:b:c:D:E:e:F:I:i:J:L:l:m:O:o:p:Q:R:S:W:w:").
constexpr std::string_view kWithValue = "BbcDEeFIiJLlmOopQRSWw";

// Why the shared connection cannot take an option about connecting or logging in.
Error ConnectionOption(const std::string& option, const std::string& host_hint) {
  return MakeError("ssh",
                   option +
                       " is not honoured: the shared connection is set up once, by `tether up`, "
                       "and every command reuses it",
                   "put it in the host's block in ~/.ssh/config (" + host_hint +
                       "), then `tether down HOST && tether up HOST`; or run plain ssh");
}

Error Unsupported(const std::string& option, const std::string& why, const std::string& hint) {
  return MakeError("ssh", option + " is not supported: " + why, hint);
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// -o options accepted and ignored: they only shape a connection of one's own (how it is
// checked, kept alive, logged, multiplexed), and tether's is already up.
const std::vector<std::string>& IgnoredOptions() {
  static const std::vector<std::string> names = {"addkeystoagent",
                                                 "addressfamily",
                                                 "batchmode",
                                                 "canonicalizehostname",
                                                 "checkhostip",
                                                 "clearallforwardings",
                                                 "compression",
                                                 "connectionattempts",
                                                 "connecttimeout",
                                                 "controlmaster",
                                                 "controlpath",
                                                 "controlpersist",
                                                 "escapechar",
                                                 "exitonforwardfailure",
                                                 "fingerprinthash",
                                                 "forwardx11trusted",
                                                 "gatewayports",
                                                 "globalknownhostsfile",
                                                 "hashknownhosts",
                                                 "identitiesonly",
                                                 "ipqos",
                                                 "kbdinteractiveauthentication",
                                                 "loglevel",
                                                 "numberofpasswordprompts",
                                                 "passwordauthentication",
                                                 "permitlocalcommand",
                                                 "preferredauthentications",
                                                 "serveralivecountmax",
                                                 "serveraliveinterval",
                                                 "stricthostkeychecking",
                                                 "tcpkeepalive",
                                                 "updatehostkeys",
                                                 "userknownhostsfile",
                                                 "verifyhostkeydns",
                                                 "visualhostkey",
                                                 "obscurekeystroketiming"};
  return names;
}

// -o options about the connection itself: refused (ConnectionOption).
const std::vector<std::string>& ConnectionOptions() {
  static const std::vector<std::string> names = {"bindaddress",
                                                 "bindinterface",
                                                 "certificatefile",
                                                 "ciphers",
                                                 "hostkeyalgorithms",
                                                 "hostkeyalias",
                                                 "hostname",
                                                 "hostbasedauthentication",
                                                 "identityagent",
                                                 "identityfile",
                                                 "kexalgorithms",
                                                 "macs",
                                                 "pkcs11provider",
                                                 "proxycommand",
                                                 "proxyjump",
                                                 "proxyusefdpass",
                                                 "pubkeyacceptedalgorithms",
                                                 "pubkeyauthentication",
                                                 "rekeylimit",
                                                 "securitykeyprovider",
                                                 "gssapiauthentication",
                                                 "gssapidelegatecredentials",
                                                 "include",
                                                 "match",
                                                 "host"};
  return names;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool IsNo(const std::string& value) {
  const std::string v = Lower(value);
  return v == "no" || v == "none" || v == "false" || v == "off";
}

// One -o argument: "Key=Value", "Key Value" or "Key=" (ssh's readconf grammar, loosely).
Status ApplyOption(const std::string& text, SshArgs& out) {
  size_t cut = text.find_first_of("= \t");
  std::string key = text.substr(0, cut);
  std::string value = cut == std::string::npos ? "" : text.substr(cut + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.front() == '='))
    value.erase(0, 1);
  const std::string name = Lower(key);
  const std::string option = "-o " + text;
  if (name.empty()) return MakeError("ssh", "-o needs an option, e.g. -o BatchMode=yes");
  if (name == "user") {
    out.user = value;
  } else if (name == "port") {
    out.port = value;
  } else if (name == "sendenv") {
    for (size_t start = 0; start <= value.size();) {
      size_t end = value.find_first_of(" \t", start);
      std::string pattern = value.substr(start, end - start);
      if (!pattern.empty()) out.send_env.push_back(pattern);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  } else if (name == "setenv") {
    if (value.find('=') == std::string::npos || value.front() == '=') {
      return MakeError("ssh", option + ": SetEnv wants NAME=value");
    }
    out.set_env.push_back(value);
  } else if (name == "requesttty") {
    const std::string v = Lower(value);
    if (v == "yes" || v == "force") {
      out.force_tty = true;
    } else if (v == "no") {
      out.no_tty = true;
    } else if (v != "auto") {
      return MakeError("ssh", option + ": RequestTTY is yes, no, force or auto");
    }
  } else if (name == "remotecommand") {
    if (!IsNo(value)) {
      return Unsupported(option, "the command comes from the arguments",
                         "give it after the host: tether ssh HOST CMD...");
    }
  } else if (name == "forwardagent" || name == "forwardx11") {
    if (!IsNo(value)) {
      return Unsupported(option, "tether's shared connection forwards no agent and no X11",
                         "run plain ssh for that session");
    }
  } else if (name == "localforward" || name == "remoteforward" || name == "dynamicforward") {
    return Unsupported(option, "forwards belong to the daemon, not to one command",
                       "add it with `tether forward HOST -L|-R|-D SPEC`");
  } else if (name == "sessiontype") {
    if (Lower(value) == "subsystem") out.subsystem = true;
    if (Lower(value) == "none") {
      return Unsupported(option, "a session without a command does nothing over tether",
                         "forwards: `tether forward HOST ...`");
    }
  } else if (Contains(ConnectionOptions(), name)) {
    return ConnectionOption(option, key + " " + value);
  } else if (Contains(IgnoredOptions(), name)) {
    out.notes.push_back(option +
                        ": ignored (it shapes a connection of one's own; tether's is "
                        "already up)");
  } else {
    return MakeError("ssh", option + ": not an option tether ssh knows",
                     "tether ssh takes ssh's common options; see docs/cli.md");
  }
  return Status::Ok();
}

// One single-letter option and its value (if it takes one).
Status ApplyFlag(char f, const std::string& value, SshArgs& out) {
  const std::string option = std::string("-") + f;
  switch (f) {
    case 'l':
      out.user = value;
      return Status::Ok();
    case 'p':
      out.port = value;
      return Status::Ok();
    case 't':
      out.force_tty = true;
      return Status::Ok();
    case 'T':
      out.no_tty = true;
      return Status::Ok();
    case 'n':
      out.stdin_null = true;
      return Status::Ok();
    case 's':
      out.subsystem = true;
      return Status::Ok();
    case 'G':
      out.print_config = true;
      return Status::Ok();
    case 'V':
      out.print_version = true;
      return Status::Ok();
    case 'v':
      ++out.verbose;
      return Status::Ok();
    case 'o':
      return ApplyOption(value, out);
    // Off already: no agent, X11 or GSSAPI forwarding over tether.
    case 'a':
    case 'x':
    case 'k':
    case 'q':
      return Status::Ok();
    case '2':
    case '4':
    case '6':
    case 'C':
      out.notes.push_back(option +
                          ": ignored (it shapes a connection of one's own; tether's is "
                          "already up)");
      return Status::Ok();
    case 'E':
      out.notes.push_back("-E " + value + ": ignored (the daemon logs to its HOST.log)");
      return Status::Ok();
    case 'e':
      // tether ssh has no escape character at all, which is what -e none asks for.
      if (!IsNo(value)) out.notes.push_back("-e " + value + ": ignored (no escape character)");
      return Status::Ok();
    case 'i':
      return ConnectionOption("-i " + value, "IdentityFile " + value);
    case 'J':
      return ConnectionOption("-J " + value, "ProxyJump " + value);
    case 'F':
      return MakeError("ssh",
                       "-F " + value +
                           " is not honoured: the shared connection was set up by `tether up` "
                           "from its own configuration",
                       "give it to tether itself: `tether -F " + value + " up HOST`");
    case 'c':
      return ConnectionOption("-c " + value, "Ciphers " + value);
    case 'm':
      return ConnectionOption("-m " + value, "MACs " + value);
    case 'b':
      return ConnectionOption("-b " + value, "BindAddress " + value);
    case 'B':
      return ConnectionOption("-B " + value, "BindInterface " + value);
    case 'I':
      return ConnectionOption("-I " + value, "PKCS11Provider " + value);
    case 'K':
      return ConnectionOption("-K", "GSSAPIAuthentication yes");
    case 'A':
    case 'X':
    case 'Y':
      return Unsupported(option, "tether's shared connection forwards no agent and no X11",
                         "run plain ssh for that session");
    case 'L':
    case 'R':
    case 'D':
      return Unsupported(option + " " + value, "forwards belong to the daemon, not to one command",
                         "add it with `tether forward HOST " + option + " " + value + "`");
    case 'W':
      return Unsupported("-W " + value, "tether ssh runs commands",
                         "use stock ssh with the ControlPath of `tether ssh-config HOST`");
    case 'w':
      return Unsupported("-w " + value, "tether forwards no tun devices", "run plain ssh");
    case 'N':
      return Unsupported("-N", "a session without a command does nothing over tether",
                         "forwards: `tether forward HOST ...`; the link: `tether up HOST`");
    case 'f':
      return Unsupported("-f", "tether ssh does not go to the background",
                         "run it with & or under nohup");
    case 'g':
      return Unsupported("-g", "forwards belong to the daemon",
                         "listen on all addresses with `tether forward HOST -L '*:PORT:...'`");
    case 'M':
    case 'S':
    case 'O':
      return Unsupported(option, "tether is the connection's master already",
                         "tether status | forward | down HOST do what ssh -O does");
    case 'Q':
      return Unsupported("-Q", "tether ssh answers no queries", "ask ssh: ssh -Q " + value);
    case '1':
      return Unsupported("-1", "SSH protocol 1 does not exist any more", "drop -1");
    default:
      return MakeError("ssh", option + ": not an option tether ssh knows",
                       "tether ssh takes ssh's common options; see docs/cli.md");
  }
}

// Options from args[*i] on, until a word that is not one; "--" ends them for good.
Status ParseOptions(const std::vector<std::string>& args, size_t* i, bool* terminated,
                    SshArgs& out) {
  for (; *i < args.size(); ++*i) {
    const std::string& a = args[*i];
    if (a == "--") {
      ++*i;
      *terminated = true;
      return Status::Ok();
    }
    if (a.size() < 2 || a[0] != '-') return Status::Ok();
    // Flags may be bundled (-tt, -qT); a value may be attached (-p2222) or follow.
    for (size_t k = 1; k < a.size(); ++k) {
      const char f = a[k];
      if (kWithValue.find(f) != std::string_view::npos) {
        std::string value;
        if (k + 1 < a.size()) {
          value = a.substr(k + 1);
        } else if (*i + 1 < args.size()) {
          value = args[++*i];
        } else {
          return MakeError("ssh", std::string("-") + f + " needs a value");
        }
        Status s = ApplyFlag(f, value, out);
        if (!s.ok()) return s;
        break;
      }
      Status s = ApplyFlag(f, "", out);
      if (!s.ok()) return s;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<SshArgs> ParseSshArgs(const std::vector<std::string>& args) {
  SshArgs out;
  size_t i = 0;
  bool terminated = false;
  Status s = ParseOptions(args, &i, &terminated, out);
  if (!s.ok()) return s.take_error();
  if (i < args.size()) out.host = args[i++];
  // As ssh.c: options may follow the destination too (sshfs sends `HOST -s sftp`), up to
  // the first word that is not one, unless "--" came before the destination.
  if (!terminated) {
    s = ParseOptions(args, &i, &terminated, out);
    if (!s.ok()) return s.take_error();
  }
  out.command.assign(args.begin() + static_cast<long>(i), args.end());
  if (out.host.empty() && !out.print_version) {
    return MakeError("ssh", "no destination",
                     "usage: tether ssh [-p port] [-l user] [-o option] [-tTns] HOST [CMD...]");
  }
  if (out.subsystem && out.command.empty()) {
    return MakeError("ssh", "-s needs a subsystem name after the host (e.g. sftp)");
  }
  // As ssh: user@host (split at the last @) or ssh://[user@]host[:port]; -l and -p, given
  // first, win over what the destination says. The host alone names the daemon.
  if (out.host.rfind("ssh://", 0) == 0) {
    auto dest = config::ParseDestination(out.host);
    if (!dest.ok())
      return MakeError("ssh", "bad destination " + out.host + ": " + dest.error().message);
    out.host = dest->host;
    if (out.user.empty()) out.user = dest->user;
    if (out.port.empty() && dest->port != 0) out.port = std::to_string(dest->port);
  } else if (auto at = out.host.rfind('@'); at != std::string::npos) {
    if (at == 0 || at + 1 == out.host.size()) {
      return MakeError("ssh", "bad destination " + out.host,
                       "usage: tether ssh [-l user] [user@]HOST [CMD...]");
    }
    if (out.user.empty()) out.user = out.host.substr(0, at);
    out.host = out.host.substr(at + 1);
  }
  return out;
}

std::vector<std::string> SelectSendEnv(const std::vector<std::string>& patterns,
                                       char* const* environ) {
  std::vector<std::string> out;
  if (environ == nullptr) return out;
  for (char* const* e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr || eq == *e) continue;
    std::string_view name(*e, static_cast<size_t>(eq - *e));
    for (const auto& p : patterns) {
      if (config::MatchPattern(p, name)) {
        out.emplace_back(*e);
        break;
      }
    }
  }
  return out;
}

}  // namespace tether::cli
