// Reads OpenSSH client configuration (ssh_config(5)) for one destination, the way ssh
// does: command-line -o options first, then the user's file (or -F FILE), then the
// system file; the first value obtained for a keyword wins, list keywords accumulate.
// libssh's own parser is not used: it ignores *Forward, ServerAlive* and IdentitiesOnly,
// and overwrites options already set (DESIGN.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/forward_spec.h"

namespace tether::config {

enum class StrictHostKeyChecking { kYes, kAcceptNew, kNo, kAsk };

// Where a destination leads once the configuration is applied.
struct HostConfig {
  std::string alias;     // the host as the user named it (matched against Host patterns)
  std::string hostname;  // HostName with %h expanded; the alias when unset
  std::string user;      // User; the local user name when unset
  uint16_t port = 22;
  // IdentityFile entries, ~ and %d %u %l %h %r %p %% expanded. When the configuration
  // names none, the defaults ~/.ssh/id_ed25519, id_ecdsa, id_rsa (whether or not they
  // exist), and identity_files_default is true.
  std::vector<std::string> identity_files;
  bool identity_files_default = true;
  // CertificateFile entries, expanded as IdentityFile: certificates tried with each
  // identity whose key they certify, besides the identity's own IDENTITY-cert.pub.
  std::vector<std::string> certificate_files;
  bool identities_only = false;
  // UserKnownHostsFile (default ~/.ssh/known_hosts ~/.ssh/known_hosts2), expanded.
  std::vector<std::string> user_known_hosts_files;
  // GlobalKnownHostsFile (default /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2).
  std::vector<std::string> global_known_hosts_files;
  // HostKeyAlias, verbatim: the name the host's key is looked up and saved under in
  // known_hosts instead of "host" or "[host]:port" ("" = none).
  std::string host_key_alias;
  StrictHostKeyChecking strict_host_key_checking = StrictHostKeyChecking::kAsk;
  std::chrono::seconds connect_timeout{0};  // 0: the system's TCP timeout
  bool batch_mode = false;                  // never prompt
  // PreferredAuthentications, in order, lowercased; empty: ssh's order. Only publickey,
  // keyboard-interactive and password mean anything to tether; others are kept and skipped.
  std::vector<std::string> preferred_authentications;
  bool pubkey_authentication = true;           // PubkeyAuthentication (unbound, host-bound: yes)
  bool kbd_interactive_authentication = true;  // KbdInteractiveAuthentication
  bool password_authentication = true;         // PasswordAuthentication
  int number_of_password_prompts = 3;          // NumberOfPasswordPrompts
  std::string ciphers;                         // Ciphers, verbatim ("" = library default)
  std::string kex_algorithms;                  // KexAlgorithms, verbatim
  std::string host_key_algorithms;             // HostKeyAlgorithms, verbatim
  std::string identity_agent;                  // IdentityAgent, expanded ("" = SSH_AUTH_SOCK)
  std::vector<std::string> proxy_jump;         // ProxyJump hops, in order ("none" = empty)
  std::string proxy_command;                   // ProxyCommand, verbatim ("none" = empty)
  int server_alive_interval_s = 0;             // ServerAliveInterval (0 = unset)
  int server_alive_count_max = 3;              // ServerAliveCountMax
  std::vector<ForwardSpec> forwards;           // LocalForward, RemoteForward, DynamicForward
  // ControlPath as written, ~ and tokens not expanded (config/control_path.h does that the
  // way ssh does); "" when unset, "none" kept as it is.
  std::string control_path;
  // Keywords we read but do not act on, and unknown ones, one line each, for -v output.
  std::vector<std::string> notes;
  // Keyword -> where the value came from ("~/.ssh/config:12", "-o \"Port=2222\"", "the
  // destination"); absent: the default. For `tether doctor`.
  std::map<std::string, std::string> sources;
  // The jump hosts to go through, in connection order (the first is reached directly),
  // each resolved like a destination of its own. Filled by ResolveJumpChain.
  std::vector<HostConfig> jump_chain;
};

struct ReadOptions {
  // -F FILE. Empty: the user's file (~/.ssh/config, silently skipped when absent) and
  // then system_config. When set, only this file is read and it must exist (as ssh -F).
  std::string config_file;
  std::string system_config = "/etc/ssh/ssh_config";  // empty: no system file
  std::string home;                                   // empty: $HOME, else the passwd entry
  std::string local_user;  // empty: the passwd entry of the effective uid
  // -o "Keyword=value" / "Keyword value" options; they take precedence over files.
  std::vector<std::string> options;
};

// A destination as typed: [user@]host[:port], host may be [v6] or [v6]:port.
struct Destination {
  std::string user;  // empty when not given
  std::string host;
  uint16_t port = 0;  // 0 when not given
};
Result<Destination> ParseDestination(std::string_view text);

// Resolves everything ssh would know about `destination` before connecting.
// A user or port in the destination overrides the configuration, as ssh's
// command line does. Errors name the file and line of a malformed entry.
Result<HostConfig> ReadHostConfig(std::string_view destination, const ReadOptions& options);

// Deepest chain of jump hosts we follow (a hop's own ProxyJump counts too): a loop in the
// configuration ends in an error rather than forever.
inline constexpr int kMaxJumpHops = 8;

// Resolves host.proxy_jump into host.jump_chain the way ssh does: `ProxyJump a,b` reaches
// b through a, and the last hop is read as a destination of its own (its ProxyJump, if the
// list has one hop, applies to it as well). Each hop keeps its own user, port, keys and
// known_hosts.
Status ResolveJumpChain(HostConfig& host, const ReadOptions& options);

// Shell-style pattern with * and ?, as Host lines use (no negation here).
bool MatchPattern(std::string_view pattern, std::string_view text);
// A comma- or space-separated pattern list with !negation, as Host/Match use.
bool MatchPatternList(const std::vector<std::string>& patterns, std::string_view text);

}  // namespace tether::config
