// ControlPath as ssh itself expands it (ssh.c, after the configuration is read): `~` and
// `~user` from the password database (never $HOME), then ${VAR} from the environment and the
// %tokens of ssh_config(5). The daemon serves the mux protocol at the result, so it must be
// the very name the user's ssh computes, or ssh would not find it.
//
// Which tokens exist, and what %C hashes, depend on the OpenSSH release (readconf.c
// ssh_connection_hash, sshconnect.h DEFAULT_CLIENT_PERCENT_EXPAND_ARGS):
//   before 9.6:  %C = SHA1 hex of  local hostname + %h + %p + %r ; no %j
//   9.6 and on:  %C = SHA1 hex of  local hostname + %h + %p + %r + %j ; %j the jump host
// Examples (this machine's ssh 9.2, `ssh -G`, local host "vm", uid 0):
//   HostName Box.Example.ORG, User alice, Port 2222:  %C ->
//   ceef1f4e7536512aae86d3b876c7af616d126fb7
//   ~/.ssh/sockets/%r@%h-%p                        -> /root/.ssh/sockets/alice@box.example.org-2222
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "config/ssh_config.h"

namespace tether::config {

// An OpenSSH release, as `ssh -V` names it ("OpenSSH_9.2p1 Debian-2+deb12u10, ...").
struct OpenSshVersion {
  int major = 0;
  int minor = 0;

  // The first release whose %C hashes the jump host and that knows %j.
  static constexpr OpenSshVersion WithJumpHost() { return {9, 6}; }
  bool AtLeast(OpenSshVersion other) const {
    return major != other.major ? major > other.major : minor >= other.minor;
  }
};
// The version in `ssh -V`'s output (it prints to stderr); nullopt when it names none.
std::optional<OpenSshVersion> ParseOpenSshVersion(std::string_view text);
// Runs `ssh -V` from $PATH (the ssh the user's commands run), bounded to a couple of
// seconds; nullopt when there is no ssh or it says no version.
std::optional<OpenSshVersion> DetectOpenSshVersion();

// Who and where ssh runs: what the tokens that are not about the destination stand for.
struct LocalIdentity {
  std::string home;      // the password database's home (%d, ~)
  std::string user;      // the password database's name (%u)
  uid_t uid = 0;         // %i
  std::string hostname;  // gethostname (%l); %L is it up to the first '.'
};
// This process's identity: getuid()'s passwd entry and gethostname.
Result<LocalIdentity> CurrentIdentity();

// The connection hash %C stands for, in `version`'s form.
std::string ConnectionHash(const OpenSshVersion& version, std::string_view local_hostname,
                           std::string_view host, std::string_view port, std::string_view user,
                           std::string_view jump_host);

// The host of ProxyJump's last hop ("user@jump:2222,bastion" -> "bastion"), what %j and
// the newer %C use; "" without ProxyJump.
std::string JumpHostOf(const HostConfig& host);

class ControlPathExpander {
 public:
  // `getenv` answers ${VAR} (null: unset); the process's environment by default.
  using GetEnv = std::function<const char*(const char*)>;
  ControlPathExpander(LocalIdentity identity, OpenSshVersion version, GetEnv getenv = nullptr);

  // The path ssh would use for `host` with `control_path` as written in ssh_config (not
  // "none"). Errors say what ssh would refuse too: an unknown token, a lone %, an unset
  // ${VAR}, an unknown ~user.
  Result<std::string> Expand(std::string_view control_path, const HostConfig& host) const;

  // The tokens ControlPath takes in this version, e.g. "CdhiklLnpru".
  std::string Tokens() const;

 private:
  Result<std::string> ExpandTilde(std::string_view path) const;

  LocalIdentity identity_;
  OpenSshVersion version_;
  GetEnv getenv_;
};

}  // namespace tether::config
