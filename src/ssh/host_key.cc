#include "ssh/host_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <fstream>
#include <memory>

#include "common/fs.h"
#include "common/unique_fd.h"

namespace tether::ssh {
namespace {

struct KeyDeleter {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyDeleter>;

std::string Fingerprint(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK) {
    return "(no fingerprint)";
  }
  char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  std::string out = text != nullptr ? text : "(no fingerprint)";
  ssh_string_free_char(text);
  return out;
}

std::string KeyType(ssh_key key) {
  const char* name = ssh_key_type_to_char(ssh_key_type(key));
  return name != nullptr ? name : "unknown";
}

std::string ExpandHome(const std::string& path) {
  if (path.rfind("~/", 0) == 0) {
    const char* home = ::getenv("HOME");
    return std::string(home != nullptr ? home : "") + path.substr(1);
  }
  return path;
}

// Appends the server's key to `file` (created 0600). A write that fails part-way (a full
// disk) is cut back to the file's length before it, so no torn line is left for the next
// append to run into; the lines already there are never touched.
Status AddKnownHost(ssh_session session, const std::string& known_name, const std::string& file) {
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(session, &raw) != SSH_OK) {
    return MakeError(ErrorCode::kHostKey, "the server sent no host key");
  }
  KeyPtr key(raw);
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key.get(), &b64) != SSH_OK) {
    return MakeError(ErrorCode::kHostKey, "cannot encode the server's host key");
  }
  std::string line = known_name + " " + KeyType(key.get()) + " " + b64 + "\n";
  ssh_string_free_char(b64);
  // Not connecting is the way to lose nothing: the daemon reconnects with nobody to ask,
  // and a key it could not remember would fail (or be asked about) every time.
  auto refused = [&](Error e) {
    e.message = "cannot remember the host key of " + known_name + ": " + e.message;
    e.hint = "the connection was not made; make " + file +
             " writable (or point UserKnownHostsFile at a file that is) and connect again";
    return e;
  };
  // Every missing directory above it is made (0700), as the state directory is: a
  // UserKnownHostsFile in a folder not made yet is written, not refused.
  std::string failed;
  if (int err = MakeParentDirs(file, &failed)) {
    return refused(ErrnoError(ErrorCode::kHostKey, "cannot create " + failed, err));
  }
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return refused(ErrnoError(ErrorCode::kHostKey, "cannot open " + file, errno));
  struct stat before {};
  if (::fstat(fd.get(), &before) != 0) {
    return refused(ErrnoError(ErrorCode::kHostKey, "cannot stat " + file, errno));
  }
  // Bounded: every round writes at least a byte or ends.
  for (size_t done = 0; done < line.size();) {
    ssize_t n = ::write(fd.get(), line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      if (S_ISREG(before.st_mode)) (void)::ftruncate(fd.get(), before.st_size);
      return refused(ErrnoError(ErrorCode::kHostKey, "cannot write " + file, err));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd.Release()) != 0) {
    return refused(ErrnoError(ErrorCode::kHostKey, "cannot write " + file, errno));
  }
  return Status::Ok();
}

std::string DescribeLines(const HostKeyCheck& check) {
  std::string s;
  for (const auto& l : check.lines) {
    s += "\n    " + l.file + ":" + std::to_string(l.line) + ": " + l.key_type + " " + l.fingerprint;
  }
  return s;
}

// For an unknown plain key of a host that known_hosts trusts a certificate authority for.
std::string CertAuthorityNote(const HostKeyCheck& check) {
  if (check.cert_authorities.empty()) return "";
  const KnownHostsLine& ca = check.cert_authorities.front();
  return " (" + ca.file + ":" + std::to_string(ca.line) +
         " trusts a certificate authority for it, but a plain key is not a certificate, and "
         "this version checks no host certificates)";
}

}  // namespace

std::string KnownHostsName(const std::string& host, uint16_t port) {
  if (port == 22) return host;
  return "[" + host + "]:" + std::to_string(port);
}

std::string KnownHostsNameFor(const config::HostConfig& host) {
  if (!host.host_key_alias.empty()) return host.host_key_alias;
  return KnownHostsName(host.hostname, host.port);
}

Result<HostKeyCheck> CheckHostKey(ssh_session session, const std::string& known_name,
                                  const std::vector<std::string>& files) {
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(session, &raw) != SSH_OK) {
    return MakeError(ErrorCode::kHostKey, "the server sent no host key");
  }
  KeyPtr server_key(raw);
  HostKeyCheck check;
  check.server_key_type = KeyType(server_key.get());
  check.server_fingerprint = Fingerprint(server_key.get());
  bool same_type_differs = false;
  for (const auto& name : files) {
    std::string file = ExpandHome(name);
    std::ifstream in(file);
    if (!in) continue;
    std::string text;
    int line_no = 0;
    // Bounded by the file's size; a known_hosts file is read once per connection.
    while (std::getline(in, text)) {
      ++line_no;
      if (text.empty() || text[0] == '#') continue;
      // "@marker hosts type key": the marker is cut off, the rest parsed as a plain line.
      enum class Marker { kNone, kRevoked, kCertAuthority } marker = Marker::kNone;
      if (text[0] == '@') {
        size_t end = text.find_first_of(" \t");
        std::string word = text.substr(0, end);
        if (word == "@revoked") {
          marker = Marker::kRevoked;
        } else if (word == "@cert-authority") {
          marker = Marker::kCertAuthority;
        } else {
          continue;
        }
        size_t rest = end == std::string::npos ? text.size() : text.find_first_not_of(" \t", end);
        text = rest == std::string::npos ? std::string() : text.substr(rest);
      }
      ssh_knownhosts_entry* entry = nullptr;
      if (ssh_known_hosts_parse_line(known_name.c_str(), text.c_str(), &entry) != SSH_OK ||
          entry == nullptr) {
        ssh_knownhosts_entry_free(entry);
        continue;
      }
      KnownHostsLine line;
      line.file = file;
      line.line = line_no;
      line.key_type = KeyType(entry->publickey);
      line.fingerprint = Fingerprint(entry->publickey);
      line.matches = ssh_key_cmp(server_key.get(), entry->publickey, SSH_KEY_CMP_PUBLIC) == 0;
      ssh_knownhosts_entry_free(entry);
      if (marker == Marker::kRevoked) {
        if (line.matches) check.revoked.push_back(std::move(line));
        continue;
      }
      if (marker == Marker::kCertAuthority) {
        check.cert_authorities.push_back(std::move(line));
        continue;
      }
      if (!line.matches && line.key_type == check.server_key_type) same_type_differs = true;
      if (line.matches) check.verdict = HostKeyVerdict::kKnown;
      check.lines.push_back(std::move(line));
    }
  }
  if (check.verdict != HostKeyVerdict::kKnown && !check.lines.empty()) {
    check.verdict = same_type_differs ? HostKeyVerdict::kChanged : HostKeyVerdict::kOtherType;
  }
  if (check.server_key_type.find("-cert-v01@openssh.com") != std::string::npos) {
    check.verdict = HostKeyVerdict::kCertificate;
  }
  if (!check.revoked.empty()) check.verdict = HostKeyVerdict::kRevoked;
  return check;
}

Status AskAboutHostKey(Prompter& prompter, const std::string& known_name,
                       const std::string& key_type, const std::string& fingerprint) {
  prompter.Tell("The authenticity of host '" + known_name + "' can't be established.");
  prompter.Tell(key_type + " key fingerprint is " + fingerprint + ".");
  Error refused = MakeError(ErrorCode::kHostKey, "host key for " + known_name + " not accepted",
                            "nothing was written to known_hosts; connect again to be asked again");
  std::string question = "Are you sure you want to continue connecting (yes/no/[fingerprint])? ";
  for (int asked = 0; asked < kHostKeyQuestions; ++asked) {
    auto answer = prompter.Ask(question, true);
    if (!answer) return refused;
    // Words as typed, with the spaces around them dropped.
    size_t begin = answer->find_first_not_of(" \t");
    size_t end = answer->find_last_not_of(" \t");
    std::string word = begin == std::string::npos ? "" : answer->substr(begin, end - begin + 1);
    std::string lower = word;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.empty() || lower == "no") return refused;
    if (lower == "yes" || word == fingerprint) return Status::Ok();
    question = "Please type 'yes', 'no' or the fingerprint: ";
  }
  refused.message += " (no clear answer in " + std::to_string(kHostKeyQuestions) + " tries)";
  return refused;
}

Status VerifyHostKey(ssh_session session, const config::HostConfig& host, Prompter& prompter) {
  std::string known_name = KnownHostsNameFor(host);
  std::vector<std::string> files = host.user_known_hosts_files;
  files.insert(files.end(), host.global_known_hosts_files.begin(),
               host.global_known_hosts_files.end());
  auto checked = CheckHostKey(session, known_name, files);
  if (!checked.ok()) return checked.take_error();
  const HostKeyCheck& check = *checked;
  std::string user_file = host.user_known_hosts_files.empty() ? std::string("~/.ssh/known_hosts")
                                                              : host.user_known_hosts_files.front();
  std::string offered = check.server_key_type + " " + check.server_fingerprint;

  switch (check.verdict) {
    case HostKeyVerdict::kKnown:
      return Status::Ok();
    case HostKeyVerdict::kRevoked: {
      const KnownHostsLine& line = check.revoked.front();
      return MakeError(ErrorCode::kHostKey,
                       "the host key of " + known_name + " (" + offered + ") is REVOKED in " +
                           line.file + ":" + std::to_string(line.line),
                       "do not connect: the server's administrator must give it a new host key");
    }
    case HostKeyVerdict::kCertificate:
      return MakeError(ErrorCode::kHostKey,
                       known_name + " offers a host certificate (" + check.server_key_type +
                           "), which this version cannot check against @cert-authority lines",
                       "take the -cert-v01@openssh.com algorithms out of HostKeyAlgorithms, so "
                       "that the server offers its plain key, and add that key to " +
                           user_file);
    case HostKeyVerdict::kChanged:
    case HostKeyVerdict::kOtherType: {
      // Never accepted, whatever StrictHostKeyChecking says: this is what a
      // man-in-the-middle looks like.
      std::string what = check.verdict == HostKeyVerdict::kChanged
                             ? "HOST KEY CHANGED for "
                             : "the server offers a different kind of host key for ";
      const KnownHostsLine& first = check.lines.front();
      return MakeError(
          ErrorCode::kHostKey,
          what + known_name + ": the server offers " + offered + "; known_hosts has" +
              DescribeLines(check),
          "someone may be intercepting the connection, or the server was reinstalled. If "
          "you trust the change, remove the old key with `ssh-keygen -R '" +
              known_name + "' -f " + first.file + "` and connect again");
    }
    case HostKeyVerdict::kUnknown:
      break;
  }

  using config::StrictHostKeyChecking;
  switch (host.strict_host_key_checking) {
    case StrictHostKeyChecking::kYes:
      return MakeError(ErrorCode::kHostKey,
                       "no known host key for " + known_name + "; the server offers " + offered +
                           CertAuthorityNote(check),
                       "check the fingerprint with the server's administrator, then add it: "
                       "`ssh-keyscan -p " +
                           std::to_string(host.port) + " " + host.hostname + " >> " + user_file +
                           "` (or set StrictHostKeyChecking accept-new for this host)");
    case StrictHostKeyChecking::kAcceptNew:
    case StrictHostKeyChecking::kNo:
      // "no" is treated as accept-new: a changed key is still refused above.
      break;
    case StrictHostKeyChecking::kAsk: {
      if (!prompter.CanPrompt()) {
        std::string why = prompter.WhyNot();
        if (why.empty()) why = "there is no terminal to ask";
        return MakeError(ErrorCode::kHostKey,
                         "no known host key for " + known_name + "; the server offers " + offered +
                             ", and " + why + CertAuthorityNote(check),
                         "run `tether up` from a terminal once, or add the key to " + user_file +
                             " (or set StrictHostKeyChecking accept-new for this host)");
      }
      Status accepted =
          AskAboutHostKey(prompter, known_name, check.server_key_type, check.server_fingerprint);
      if (!accepted.ok()) return accepted;
      break;
    }
  }
  Status added = AddKnownHost(session, known_name,
                              user_file.rfind("~/", 0) == 0 ? ExpandHome(user_file) : user_file);
  if (!added.ok()) return added;
  prompter.Tell("Warning: Permanently added '" + known_name + "' (" + check.server_key_type +
                ") to the list of known hosts.");
  return Status::Ok();
}

}  // namespace tether::ssh
