#include "ssh/session.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "net/socket.h"
#include "ssh/auth_methods.h"
#include "ssh/command.h"
#include "ssh/host_key.h"
#include "ssh/jump_relay.h"

namespace tether::ssh {
namespace {

// Keep TCP from holding a dead connection for minutes: probes after 10 s idle.
constexpr int kTcpKeepIdleS = 10;
constexpr int kTcpKeepIntervalS = 5;
constexpr int kTcpKeepCount = 3;
// A server that keeps answering "partial success" gets at most this many factors.
constexpr int kMaxPartialRounds = 8;
// Bounded: a keyboard-interactive server that keeps asking gets at most this many rounds.
constexpr int kMaxKbdintRounds = 16;
// The probe exec must not hold up `tether up` on a slow or odd server.
constexpr std::chrono::milliseconds kProbeTimeout{5000};
constexpr size_t kProbeMaxOutput = 256;

struct KeyDeleter {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyDeleter>;

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Error HostError(const config::HostConfig& host, Error e) {
  e.message = host.alias + ": " + e.message;
  return e;
}

Status SetOption(ssh_session s, ssh_options_e option, const void* value, const char* name) {
  if (ssh_options_set(s, option, value) != SSH_OK) {
    return MakeError("config",
                     std::string("libssh refused option ") + name + ": " + ssh_get_error(s));
  }
  return Status::Ok();
}

// libssh's passphrase callback for encrypted keys, answered by the Prompter.
struct PassphraseContext {
  Prompter* prompter;
  std::string path;
  int max_attempts;  // NumberOfPasswordPrompts, as ssh
  int attempts = 0;
};

int AskPassphrase(const char* /*prompt*/, char* buf, size_t len, int /*echo*/, int /*verify*/,
                  void* userdata) {
  auto* ctx = static_cast<PassphraseContext*>(userdata);
  if (ctx == nullptr || !ctx->prompter->CanPrompt() || ctx->attempts >= ctx->max_attempts) {
    return -1;
  }
  ++ctx->attempts;
  auto answer = ctx->prompter->Ask("Enter passphrase for key '" + ctx->path + "': ", false);
  if (!answer || answer->size() + 1 > len) return -1;
  std::memcpy(buf, answer->c_str(), answer->size() + 1);
  std::fill(answer->begin(), answer->end(), '\0');
  return 0;
}

}  // namespace

Session::Session(ssh_session s) : session_(s) {}

Session::~Session() {
  read_ahead_.reset();  // unregistered before libssh closes the socket
  if (session_ != nullptr) {
    ssh_disconnect(session_);
    ssh_free(session_);
  }
  relay_.reset();  // after: the session ran over it
}

void Session::PauseRelays() {
  if (relay_) relay_->Pause();
}

void Session::ResumeRelays() {
  if (relay_) relay_->Resume();
}

void Session::SetNonBlocking() { ssh_set_blocking(session_, 0); }

void Session::Drain(ssh_event event, int max_polls) {
  ReadAhead::Scope scope;
  // Past max_polls, only what the read-ahead holds: 4 KiB a poll, nothing read anew.
  const int bound = max_polls + ReadAhead::kPollsToEmpty;
  for (int i = 0; i < bound && (i < max_polls || read_ahead_pending() > 0); ++i) {
    if (ssh_event_dopoll(event, 0) != SSH_OK) break;
  }
}

void Session::EnableReadAhead() {
  if (!read_ahead_ && fd() >= 0) read_ahead_ = std::make_unique<ReadAhead>(session_);
}

Result<std::unique_ptr<Session>> Session::Connect(const config::HostConfig& host,
                                                  Prompter& prompter,
                                                  const ConnectOptions& options) {
  if (!host.proxy_command.empty()) {
    return HostError(host, MakeError(ErrorCode::kConnect, "ProxyCommand is not supported",
                                     "use ProxyJump (or -J) for jump hosts"));
  }
  if (!host.proxy_jump.empty() && host.jump_chain.empty()) {
    return HostError(host, MakeError(ErrorCode::kConnect, "ProxyJump was not resolved"));
  }
  std::unique_ptr<JumpRelay> relay;
  Result<UniqueFd> fd = MakeError(ErrorCode::kConnect, "not connected");
  if (!host.jump_chain.empty()) {
    // The last hop, reached (recursively) through the ones before it.
    config::HostConfig hop = host.jump_chain.back();
    hop.jump_chain.assign(host.jump_chain.begin(), host.jump_chain.end() - 1);
    ConnectOptions hop_options = options;
    hop_options.probe = false;
    auto via = Connect(hop, prompter, hop_options);
    if (!via.ok()) return via.take_error();
    auto opened = JumpRelay::Open(std::move(*via), hop.alias, host.hostname, host.port);
    if (!opened.ok()) return HostError(host, opened.take_error());
    relay = std::move(*opened);
    fd = relay->TakeSocket();
  } else {
    std::chrono::milliseconds timeout = host.connect_timeout;
    if (options.tcp_connect_timeout.count() > 0 &&
        (timeout.count() == 0 || options.tcp_connect_timeout < timeout)) {
      timeout = options.tcp_connect_timeout;
    }
    if (options.first_hop_socket && options.first_hop_socket->valid()) {
      fd = std::move(*options.first_hop_socket);
      // libssh drives a blocking socket in blocking mode (see SetNonBlocking).
      Status blocking = net::SetNonBlocking(fd->get(), false);
      if (!blocking.ok()) return HostError(host, blocking.take_error());
    } else {
      fd = net::ConnectTcp(host.hostname, host.port, timeout);
    }
    if (!fd.ok()) return HostError(host, fd.take_error());
    net::SetNoDelay(fd->get());
    net::SetKeepAlive(fd->get(), kTcpKeepIdleS, kTcpKeepIntervalS, kTcpKeepCount);
  }

  ssh_session raw = ssh_new();
  if (raw == nullptr) return MakeError(ErrorCode::kConnect, "out of memory");
  std::unique_ptr<Session> session(new Session(raw));
  session->relay_ = std::move(relay);

  // Our own config reader resolved everything; libssh must not read files itself.
  int no = 0;
  int verbosity = options.log_verbosity;
  long handshake_timeout_s = host.connect_timeout.count() > 0 ? host.connect_timeout.count() : 30;
  int port = host.port;
  socket_t sock = fd->get();
  Status s = SetOption(raw, SSH_OPTIONS_PROCESS_CONFIG, &no, "ProcessConfig");
  if (s.ok()) s = SetOption(raw, SSH_OPTIONS_HOST, host.hostname.c_str(), "HostName");
  if (s.ok()) s = SetOption(raw, SSH_OPTIONS_PORT, &port, "Port");
  if (s.ok()) s = SetOption(raw, SSH_OPTIONS_USER, host.user.c_str(), "User");
  if (s.ok()) s = SetOption(raw, SSH_OPTIONS_LOG_VERBOSITY, &verbosity, "LogLevel");
  if (s.ok()) s = SetOption(raw, SSH_OPTIONS_TIMEOUT, &handshake_timeout_s, "ConnectTimeout");
  if (s.ok() && !host.ciphers.empty()) {
    s = SetOption(raw, SSH_OPTIONS_CIPHERS_C_S, host.ciphers.c_str(), "Ciphers");
    if (s.ok()) s = SetOption(raw, SSH_OPTIONS_CIPHERS_S_C, host.ciphers.c_str(), "Ciphers");
  }
  if (s.ok() && !host.kex_algorithms.empty()) {
    s = SetOption(raw, SSH_OPTIONS_KEY_EXCHANGE, host.kex_algorithms.c_str(), "KexAlgorithms");
  }
  if (s.ok() && !host.host_key_algorithms.empty()) {
    s = SetOption(raw, SSH_OPTIONS_HOSTKEYS, host.host_key_algorithms.c_str(), "HostKeyAlgorithms");
  }
  if (s.ok() && !host.identity_agent.empty()) {
    s = SetOption(raw, SSH_OPTIONS_IDENTITY_AGENT, host.identity_agent.c_str(), "IdentityAgent");
  }
  if (s.ok()) s = SetOption(raw, SSH_OPTIONS_FD, &sock, "fd");
  if (!s.ok()) return HostError(host, s.take_error());
  fd->Release();  // libssh owns the socket now and closes it in ssh_free

  if (ssh_connect(raw) != SSH_OK) {
    return HostError(
        host, MakeError(ErrorCode::kHandshake,
                        "SSH handshake with " + net::FormatHostPort(host.hostname, host.port) +
                            " failed: " + ssh_get_error(raw),
                        "is it an SSH server, and do we share a cipher and key "
                        "exchange? (`ssh -v` shows what it offers)"));
  }
  Status verified = VerifyHostKey(raw, host, prompter);
  if (!verified.ok()) return HostError(host, verified.take_error());
  Status authed = session->Authenticate(host, prompter);
  if (!authed.ok()) return HostError(host, authed.take_error());
  const char* cipher = ssh_get_cipher_out(raw);
  session->cipher_ = cipher != nullptr ? cipher : "";
  if (options.probe) session->Probe();
  return session;
}

void Session::Probe() {
  CommandLimits limits;
  limits.timeout = kProbeTimeout;
  limits.max_output = kProbeMaxOutput;
  auto r = RunCommand(*this, "uname -sm", "", limits);
  std::string out = r.ok() ? r->out : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  if (out.find('\n') != std::string::npos) out.clear();  // a banner or a wrapper, not uname
  remote_system_ = out;
}

namespace {

enum class Outcome { kSuccess, kPartial, kDenied, kError, kUnanswered };

// One login's progress over the methods and factors, for the next step and the error.
struct Login {
  ssh_session s;
  const config::HostConfig& host;
  Prompter& prompter;
  std::vector<std::string> tried;             // what was offered, in order
  std::vector<std::string> accepted;          // what won a partial success, in order, with its key
  std::vector<std::string> accepted_methods;  // the same, the method's name alone
  // Keys that won a partial success: sshd takes a key once per login.
  std::vector<std::string> used_keys;
  // Decrypted keys kept across factors, so that a passphrase is asked once.
  std::vector<std::pair<std::string, KeyPtr>> loaded;
  std::string unanswered;  // why the last prompt got no answer
  // A key needed its passphrase and nobody could be asked.
  bool passphrase_unasked = false;
};

Outcome FromRc(int rc) {
  switch (rc) {
    case SSH_AUTH_SUCCESS:
      return Outcome::kSuccess;
    case SSH_AUTH_PARTIAL:
      return Outcome::kPartial;
    case SSH_AUTH_ERROR:
      return Outcome::kError;
    default:
      return Outcome::kDenied;
  }
}

std::string Joined(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

// "a, b (3 times), c": a method tried again and again is named once.
std::string Counted(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (size_t i = 0; i < items.size();) {
    size_t j = i;
    while (j < items.size() && items[j] == items[i]) ++j;
    out.push_back(j - i > 1 ? items[i] + " (" + std::to_string(j - i) + " times)" : items[i]);
    i = j;
  }
  return Joined(out, ", ");
}

// The private key at `path`, decrypted (asking for its passphrase), or why not.
ssh_key LoadKey(Login& l, const std::string& path, std::string* why) {
  for (auto& [loaded_path, key] : l.loaded) {
    if (loaded_path == path) return key.get();
  }
  PassphraseContext ctx{&l.prompter, path, l.host.number_of_password_prompts};
  ssh_key priv_raw = nullptr;
  int rc = SSH_ERROR;
  // libssh asks once per import: ask again after a wrong passphrase, as ssh does.
  for (;;) {
    int asked_before = ctx.attempts;
    rc = ssh_pki_import_privkey_file(path.c_str(), nullptr, AskPassphrase, &ctx, &priv_raw);
    if (rc == SSH_OK || ctx.attempts == asked_before || ctx.attempts >= ctx.max_attempts) break;
  }
  if (rc != SSH_OK) {
    l.passphrase_unasked = ctx.attempts == 0 && !l.prompter.CanPrompt();
    *why = ctx.attempts > 0 ? " (wrong passphrase)"
           : l.prompter.CanPrompt()
               ? " (unreadable)"
               : " (needs a passphrase, and " + l.prompter.WhyNot() + ": load it into ssh-agent)";
    return nullptr;
  }
  l.loaded.emplace_back(path, KeyPtr(priv_raw));
  return priv_raw;
}

// The certificates that may certify the key at `path`: its own PATH-cert.pub, then the
// host's CertificateFile entries.
std::vector<std::string> CertificatesFor(const config::HostConfig& host, const std::string& path) {
  std::vector<std::string> certs;
  if (FileExists(path + "-cert.pub")) certs.push_back(path + "-cert.pub");
  for (const std::string& c : host.certificate_files) {
    if (c != "none" && std::find(certs.begin(), certs.end(), c) == certs.end()) certs.push_back(c);
  }
  return certs;
}

// Logs in with the key at `path`, shown as `label`: `offer` (its public half, or a
// certificate of it; null: none) is asked about first, so that a passphrase is asked only
// for a key the server would take; then the key is loaded (once per login) and signs, with
// `cert` attached when given. kDenied when the server would not take it or the certificate
// is for another key.
Outcome OfferKey(Login& l, const std::string& path, ssh_key offer, ssh_key cert,
                 const std::string& label) {
  if (offer != nullptr) {
    int rc = ssh_userauth_try_publickey(l.s, nullptr, offer);
    if (rc == SSH_AUTH_ERROR) return Outcome::kError;
    if (rc != SSH_AUTH_SUCCESS) {
      l.tried.push_back(label);
      return Outcome::kDenied;
    }
  }
  std::string why;
  ssh_key priv = LoadKey(l, path, &why);
  if (priv == nullptr) {
    l.tried.push_back(label + why);
    return Outcome::kDenied;
  }
  if (cert != nullptr && ssh_pki_copy_cert_to_privkey(cert, priv) != SSH_OK)
    return Outcome::kDenied;
  l.tried.push_back(label);
  Outcome o = FromRc(ssh_userauth_publickey(l.s, nullptr, priv));
  if (o == Outcome::kPartial) {
    l.used_keys.push_back(path);
    l.accepted.push_back("publickey (" + label + ")");
    l.accepted_methods.push_back("publickey");
  }
  return o;
}

// Offers each certificate of the key at `path` that the server would accept, signed with
// that key (loaded once, asked its passphrase once). kDenied when none got in.
Outcome TryCertificates(Login& l, const std::string& path) {
  for (const std::string& cert_path : CertificatesFor(l.host, path)) {
    if (!FileExists(cert_path)) {
      l.tried.push_back(cert_path + " (missing)");
      continue;
    }
    ssh_key cert_raw = nullptr;
    if (ssh_pki_import_cert_file(cert_path.c_str(), &cert_raw) != SSH_OK) {
      l.tried.push_back(cert_path + " (not a certificate this version can read)");
      continue;
    }
    KeyPtr cert(cert_raw);
    Outcome o = OfferKey(l, path, cert.get(), cert.get(), cert_path);
    if (o != Outcome::kDenied) return o;
  }
  return Outcome::kDenied;
}

Outcome TryPublicKey(Login& l) {
  const config::HostConfig& host = l.host;
  if (!host.identities_only &&
      (!host.identity_agent.empty() || ::getenv("SSH_AUTH_SOCK") != nullptr)) {
    l.tried.push_back("ssh-agent");
    Outcome o = FromRc(ssh_userauth_agent(l.s, nullptr));
    if (o != Outcome::kDenied) {
      if (o == Outcome::kPartial) {
        l.accepted.push_back("publickey (ssh-agent)");
        l.accepted_methods.push_back("publickey");
      }
      return o;
    }
  }
  for (const std::string& path : host.identity_files) {
    if (std::find(l.used_keys.begin(), l.used_keys.end(), path) != l.used_keys.end()) continue;
    if (!FileExists(path)) {
      if (!host.identity_files_default) l.tried.push_back(path + " (missing)");
      continue;
    }
    // A certificate of this key first, as ssh tries IDENTITY-cert.pub and CertificateFile.
    Outcome by_cert = TryCertificates(l, path);
    if (by_cert != Outcome::kDenied) return by_cert;
    std::string pub_path = path + ".pub";
    ssh_key pub_raw = nullptr;
    if (FileExists(pub_path) && ssh_pki_import_pubkey_file(pub_path.c_str(), &pub_raw) != SSH_OK) {
      pub_raw = nullptr;
    }
    KeyPtr pub(pub_raw);
    Outcome o = OfferKey(l, path, pub.get(), nullptr, path);
    if (o != Outcome::kDenied) return o;
  }
  return Outcome::kDenied;
}

// Asks `prompt`; the answer, or nullopt with l.unanswered saying why.
std::optional<std::string> AskFor(Login& l, const std::string& prompt, bool echo) {
  auto answer = l.prompter.Ask(prompt, echo);
  if (!answer) {
    std::string why = l.prompter.WhyNot();
    l.unanswered = why.empty() ? "nobody answered" : why;
  }
  return answer;
}

Outcome TryKeyboardInteractive(Login& l) {
  // Each attempt is a new request, as ssh counts NumberOfPasswordPrompts for it.
  for (int attempt = 0; attempt < l.host.number_of_password_prompts; ++attempt) {
    l.tried.push_back("keyboard-interactive");
    int rc = ssh_userauth_kbdint(l.s, nullptr, nullptr);
    for (int round = 0; rc == SSH_AUTH_INFO && round < kMaxKbdintRounds; ++round) {
      // As the server sent them; ssh shows the name and the instruction when not empty.
      const char* name = ssh_userauth_kbdint_getname(l.s);
      if (name != nullptr && *name != '\0') l.prompter.Tell(name);
      const char* instruction = ssh_userauth_kbdint_getinstruction(l.s);
      if (instruction != nullptr && *instruction != '\0') l.prompter.Tell(instruction);
      int n = ssh_userauth_kbdint_getnprompts(l.s);
      for (int i = 0; i < n; ++i) {
        char echo = 0;
        const char* prompt = ssh_userauth_kbdint_getprompt(l.s, i, &echo);
        // ssh names the account asked about: with jump hosts several may ask in turn.
        auto answer = AskFor(l,
                             "(" + l.host.user + "@" + l.host.hostname + ") " +
                                 (prompt != nullptr ? prompt : "Response: "),
                             echo != 0);
        if (!answer) return Outcome::kUnanswered;
        ssh_userauth_kbdint_setanswer(l.s, static_cast<unsigned>(i), answer->c_str());
        std::fill(answer->begin(), answer->end(), '\0');
      }
      rc = ssh_userauth_kbdint(l.s, nullptr, nullptr);
    }
    Outcome o = FromRc(rc == SSH_AUTH_INFO ? SSH_AUTH_DENIED : rc);
    if (o == Outcome::kPartial) {
      l.accepted.push_back("keyboard-interactive");
      l.accepted_methods.push_back("keyboard-interactive");
    }
    if (o != Outcome::kDenied) return o;
  }
  return Outcome::kDenied;
}

Outcome TryPassword(Login& l) {
  for (int attempt = 0; attempt < l.host.number_of_password_prompts; ++attempt) {
    if (attempt > 0) l.prompter.Tell("Permission denied, please try again.");
    auto password = AskFor(l, l.host.user + "@" + l.host.hostname + "'s password: ", false);
    if (!password) return Outcome::kUnanswered;
    l.tried.push_back("password");
    Outcome o = FromRc(ssh_userauth_password(l.s, nullptr, password->c_str()));
    std::fill(password->begin(), password->end(), '\0');
    if (o == Outcome::kPartial) {
      l.accepted.push_back("password");
      l.accepted_methods.push_back("password");
    }
    if (o != Outcome::kDenied) return o;
  }
  return Outcome::kDenied;
}

bool Lists(int methods, AuthMethod m) {
  switch (m) {
    case AuthMethod::kPublicKey:
      return (methods & SSH_AUTH_METHOD_PUBLICKEY) != 0;
    case AuthMethod::kKeyboardInteractive:
      return (methods & SSH_AUTH_METHOD_INTERACTIVE) != 0;
    case AuthMethod::kPassword:
      return (methods & SSH_AUTH_METHOD_PASSWORD) != 0;
  }
  return false;
}

bool NeedsAnswer(AuthMethod m) { return m != AuthMethod::kPublicKey; }

// "permission denied for u@h ..." with what was tried, what the server still accepts,
// and why the methods it accepts were not tried.
Error DeniedError(const Login& l, int methods) {
  const config::HostConfig& host = l.host;
  std::string accepts;
  std::vector<std::string> not_tried;
  bool needs_a_person = false;
  for (AuthMethod m :
       {AuthMethod::kPublicKey, AuthMethod::kKeyboardInteractive, AuthMethod::kPassword}) {
    if (!Lists(methods, m)) continue;
    const std::string name(AuthMethodName(m));
    accepts += " " + name;
    std::string why = WhyNotInOrder(host, m);
    if (!why.empty()) {
      not_tried.push_back(name + ": " + why);
    } else if (NeedsAnswer(m)) {
      if (!l.prompter.CanPrompt()) {
        needs_a_person = true;
        not_tried.push_back(name);
      } else if (host.number_of_password_prompts == 0) {
        not_tried.push_back(name + ": NumberOfPasswordPrompts is 0");
      }
    }
  }
  std::string what = "permission denied for " + host.user + "@" + host.hostname;
  if (!l.accepted.empty()) {
    what += " after partial success: " + Joined(l.accepted, ", ") +
            " accepted, and the server wants another factor";
  }
  std::string offered = Counted(l.tried);
  if (offered.empty()) offered = "nothing we could offer";
  what += " (tried: " + offered;
  if (!not_tried.empty()) what += "; not tried: " + Joined(not_tried, ", ");
  what += std::string("; the server ") + (l.accepted.empty() ? "accepts" : "still accepts") + ":" +
          (accepts.empty() ? " nothing tether speaks" : accepts) + ")";
  if (!l.unanswered.empty()) what += ": no answer: " + l.unanswered;

  std::string hint;
  if (needs_a_person) {
    hint = "the server wants a password or a one-time code, and " + l.prompter.WhyNot() + "; " +
           l.prompter.HowToBeAsked();
  } else if (l.passphrase_unasked && l.accepted.empty()) {
    hint = "the key needs its passphrase, and " + l.prompter.WhyNot() + "; " +
           l.prompter.HowToBeAsked() + ", or load it into ssh-agent (ssh-add)";
  } else if (l.accepted.empty() && Lists(methods, AuthMethod::kPublicKey)) {
    hint = "make sure the server has your public key in ~/.ssh/authorized_keys of " + host.user +
           " (ssh-copy-id), or set IdentityFile for this host";
  } else {
    hint = "check the password or code; `ssh -v " + host.alias + "` shows the same exchange";
  }
  // A daemon told this waits for a person (`tether login`) rather than retrying: without
  // one, the next attempt ends the same way.
  bool person_would_do = needs_a_person || (l.passphrase_unasked && l.accepted.empty());
  return MakeError(person_would_do ? ErrorCode::kNeedsLogin : ErrorCode::kAuth, what, hint);
}

}  // namespace

Status Session::Authenticate(const config::HostConfig& host, Prompter& prompter) {
  ssh_session s = session_;
  int rc = ssh_userauth_none(s, nullptr);
  if (rc == SSH_AUTH_SUCCESS) {
    auth_method_ = "none";
    return Status::Ok();
  }
  if (rc == SSH_AUTH_ERROR) {
    return MakeError(ErrorCode::kAuth, std::string("authentication failed: ") + ssh_get_error(s));
  }
  Login l{s, host, prompter, {}, {}, {}, {}, {}, {}, false};
  int methods = ssh_userauth_list(s, nullptr);
  const std::vector<AuthMethod> order = AuthOrder(host);
  // After a partial success the server names what it still wants; like ssh, start over
  // in our order with that list.
  for (int factor = 0; factor < kMaxPartialRounds; ++factor) {
    Outcome outcome = Outcome::kDenied;
    for (AuthMethod m : order) {
      if (!Lists(methods, m)) continue;
      if (NeedsAnswer(m) && !prompter.CanPrompt()) continue;
      switch (m) {
        case AuthMethod::kPublicKey:
          outcome = TryPublicKey(l);
          break;
        case AuthMethod::kKeyboardInteractive:
          outcome = TryKeyboardInteractive(l);
          break;
        case AuthMethod::kPassword:
          outcome = TryPassword(l);
          break;
      }
      if (outcome == Outcome::kSuccess) {
        std::vector<std::string> all = l.accepted_methods;
        all.emplace_back(AuthMethodName(m));
        auth_method_ = Joined(all, " + ");
        return Status::Ok();
      }
      if (outcome == Outcome::kError) {
        return MakeError(ErrorCode::kAuth,
                         std::string("authentication failed: ") + ssh_get_error(s));
      }
      if (outcome != Outcome::kDenied) break;
    }
    if (outcome != Outcome::kPartial) break;
    methods = ssh_userauth_list(s, nullptr);
  }
  return DeniedError(l, methods);
}

}  // namespace tether::ssh
