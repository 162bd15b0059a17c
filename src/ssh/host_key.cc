#include "ssh/host_key.h"

#include <sys/stat.h>

#include <fstream>
#include <memory>

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

// Appends the server's key to `file`, creating its directory (0700) and the file (0600).
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
  auto slash = file.rfind('/');
  if (slash != std::string::npos && slash > 0) ::mkdir(file.substr(0, slash).c_str(), 0700);
  mode_t old = ::umask(0077);
  std::ofstream out(file, std::ios::app);
  ::umask(old);
  out << line;
  out.close();
  if (!out) {
    return MakeError(ErrorCode::kHostKey, "cannot write " + file,
                     "check that the file and its directory are writable");
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

}  // namespace

std::string KnownHostsName(const std::string& host, uint16_t port) {
  if (port == 22) return host;
  return "[" + host + "]:" + std::to_string(port);
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
      if (text.empty() || text[0] == '#' || text[0] == '@') continue;
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
      if (!line.matches && line.key_type == check.server_key_type) same_type_differs = true;
      ssh_knownhosts_entry_free(entry);
      if (line.matches) check.verdict = HostKeyVerdict::kKnown;
      check.lines.push_back(std::move(line));
    }
  }
  if (check.verdict != HostKeyVerdict::kKnown && !check.lines.empty()) {
    check.verdict = same_type_differs ? HostKeyVerdict::kChanged : HostKeyVerdict::kOtherType;
  }
  return check;
}

Status VerifyHostKey(ssh_session session, const config::HostConfig& host, Prompter& prompter) {
  std::string known_name = KnownHostsName(host.hostname, host.port);
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
                       "no known host key for " + known_name + "; the server offers " + offered,
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
        return MakeError(ErrorCode::kHostKey,
                         "no known host key for " + known_name + "; the server offers " + offered +
                             ", and there is no terminal to ask",
                         "run `tether up` from a terminal once, or add the key to " + user_file +
                             " (or set StrictHostKeyChecking accept-new for this host)");
      }
      prompter.Tell("The authenticity of host '" + known_name + "' can't be established.");
      prompter.Tell(check.server_key_type + " key fingerprint is " + check.server_fingerprint +
                    ".");
      // Bounded: three unclear answers end the question.
      for (int attempt = 0; attempt < 3; ++attempt) {
        auto answer = prompter.Ask(
            "Are you sure you want to continue connecting (yes/no/[fingerprint])? ", true);
        if (!answer || *answer == "no") {
          return MakeError(ErrorCode::kHostKey, "host key for " + known_name + " not accepted");
        }
        if (*answer == "yes" || *answer == check.server_fingerprint) break;
        if (attempt == 2) {
          return MakeError(ErrorCode::kHostKey, "host key for " + known_name + " not accepted");
        }
      }
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
