// Host-key verification against known_hosts files, as OpenSSH's StrictHostKeyChecking
// does it. Our own lookup (through libssh's line parser) so that every user and global
// file is read and a mismatch can name the file and line involved.
#pragma once

#include <libssh/libssh.h>

#include <string>
#include <vector>

#include "common/result.h"
#include "config/ssh_config.h"
#include "ssh/prompter.h"

namespace tether::ssh {

// "host" for port 22, "[host]:port" otherwise: the name known_hosts files use.
std::string KnownHostsName(const std::string& host, uint16_t port);
// The name `host`'s key is looked up and saved under: its HostKeyAlias verbatim (no port,
// as ssh does), else KnownHostsName(hostname, port).
std::string KnownHostsNameFor(const config::HostConfig& host);

// A known_hosts line that names the host.
struct KnownHostsLine {
  std::string file;
  int line = 0;
  std::string key_type;     // "ssh-ed25519"
  std::string fingerprint;  // "SHA256:..."
  bool matches = false;     // same key as the server's
};

// kRevoked: an "@revoked" line for this host holds the server's very key; refused before
// anything else. kCertificate: the server's key is a certificate, which this version does
// not check against "@cert-authority" lines (libssh 0.10 has no host certificate check).
enum class HostKeyVerdict { kKnown, kUnknown, kChanged, kOtherType, kRevoked, kCertificate };

struct HostKeyCheck {
  HostKeyVerdict verdict = HostKeyVerdict::kUnknown;
  std::string server_key_type;
  std::string server_fingerprint;
  std::vector<KnownHostsLine> lines;    // every plain line naming this host (hashed ones too)
  std::vector<KnownHostsLine> revoked;  // "@revoked" lines naming this host
  std::vector<KnownHostsLine> cert_authorities;  // "@cert-authority" lines naming this host
};

// Looks the server's key up in `files` (in order). Missing files are skipped; lines with
// a marker other than @revoked and @cert-authority are skipped, as ssh does.
Result<HostKeyCheck> CheckHostKey(ssh_session session, const std::string& known_name,
                                  const std::vector<std::string>& files);

// StrictHostKeyChecking=ask's question about an unknown key, as ssh asks it: "yes" (any
// case) or the key's fingerprint accepts; "no", an empty line or no answer at all (end of
// input) refuses; anything else is asked again with what to type, kHostKeyQuestions times
// at most, and then refuses. Tells the person the key's type and fingerprint first.
inline constexpr int kHostKeyQuestions = 3;
Status AskAboutHostKey(Prompter& prompter, const std::string& known_name,
                       const std::string& key_type, const std::string& fingerprint);

// Applies StrictHostKeyChecking to the check: known keys pass; unknown ones are added
// (accept-new, no), asked about (ask, on a terminal) or refused (yes); changed keys are
// always refused with the fingerprint and the known_hosts lines involved.
Status VerifyHostKey(ssh_session session, const config::HostConfig& host, Prompter& prompter);

}  // namespace tether::ssh
