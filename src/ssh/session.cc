#include "ssh/session.h"

#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "net/socket.h"
#include "ssh/command.h"
#include "ssh/host_key.h"
#include "ssh/jump_relay.h"

namespace tether::ssh {
namespace {

// Keep TCP from holding a dead connection for minutes: probes after 10 s idle.
constexpr int kTcpKeepIdleS = 10;
constexpr int kTcpKeepIntervalS = 5;
constexpr int kTcpKeepCount = 3;
// Passphrase attempts per key, as ssh's NumberOfPasswordPrompts.
constexpr int kPassphraseAttempts = 3;
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
  int attempts = 0;
};

int AskPassphrase(const char* /*prompt*/, char* buf, size_t len, int /*echo*/, int /*verify*/,
                  void* userdata) {
  auto* ctx = static_cast<PassphraseContext*>(userdata);
  if (ctx == nullptr || !ctx->prompter->CanPrompt() || ctx->attempts >= kPassphraseAttempts) {
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
  int methods = ssh_userauth_list(s, nullptr);
  std::vector<std::string> tried;

  if (methods & SSH_AUTH_METHOD_PUBLICKEY) {
    if (!host.identities_only &&
        (!host.identity_agent.empty() || ::getenv("SSH_AUTH_SOCK") != nullptr)) {
      rc = ssh_userauth_agent(s, nullptr);
      tried.push_back("ssh-agent");
      if (rc == SSH_AUTH_SUCCESS) {
        auth_method_ = "publickey (agent)";
        return Status::Ok();
      }
    }
    for (const std::string& path : host.identity_files) {
      if (!FileExists(path)) {
        if (!host.identity_files_default) tried.push_back(path + " (missing)");
        continue;
      }
      // Offer the public half first when we have it, so a passphrase is asked only for
      // a key the server would accept.
      std::string pub_path = path + ".pub";
      if (FileExists(pub_path)) {
        ssh_key pub_raw = nullptr;
        if (ssh_pki_import_pubkey_file(pub_path.c_str(), &pub_raw) == SSH_OK) {
          KeyPtr pub(pub_raw);
          if (ssh_userauth_try_publickey(s, nullptr, pub.get()) != SSH_AUTH_SUCCESS) {
            tried.push_back(path);
            continue;
          }
        }
      }
      PassphraseContext ctx{&prompter, path};
      ssh_key priv_raw = nullptr;
      // libssh asks once per import: ask again after a wrong passphrase, as ssh does.
      for (;;) {
        int asked_before = ctx.attempts;
        rc = ssh_pki_import_privkey_file(path.c_str(), nullptr, AskPassphrase, &ctx, &priv_raw);
        if (rc == SSH_OK || ctx.attempts == asked_before || ctx.attempts >= kPassphraseAttempts) {
          break;
        }
      }
      if (rc != SSH_OK) {
        std::string why = ctx.attempts > 0 ? " (wrong passphrase)"
                          : prompter.CanPrompt()
                              ? " (unreadable)"
                              : " (needs a passphrase, and there is no terminal to ask: load "
                                "it into ssh-agent)";
        tried.push_back(path + why);
        continue;
      }
      KeyPtr priv(priv_raw);
      rc = ssh_userauth_publickey(s, nullptr, priv.get());
      tried.push_back(path);
      if (rc == SSH_AUTH_SUCCESS) {
        auth_method_ = "publickey";
        return Status::Ok();
      }
      if (rc == SSH_AUTH_ERROR) break;
    }
  }

  if ((methods & SSH_AUTH_METHOD_INTERACTIVE) && prompter.CanPrompt()) {
    tried.push_back("keyboard-interactive");
    rc = ssh_userauth_kbdint(s, nullptr, nullptr);
    // Bounded: a server that keeps asking gets at most this many rounds.
    for (int round = 0; rc == SSH_AUTH_INFO && round < 16; ++round) {
      const char* instruction = ssh_userauth_kbdint_getinstruction(s);
      if (instruction != nullptr && *instruction != '\0') prompter.Tell(instruction);
      int n = ssh_userauth_kbdint_getnprompts(s);
      for (int i = 0; i < n; ++i) {
        char echo = 0;
        const char* prompt = ssh_userauth_kbdint_getprompt(s, i, &echo);
        auto answer = prompter.Ask(prompt != nullptr ? prompt : "Response: ", echo != 0);
        if (!answer)
          return MakeError(ErrorCode::kAuth, "keyboard-interactive authentication cancelled");
        ssh_userauth_kbdint_setanswer(s, i, answer->c_str());
      }
      rc = ssh_userauth_kbdint(s, nullptr, nullptr);
    }
    if (rc == SSH_AUTH_SUCCESS) {
      auth_method_ = "keyboard-interactive";
      return Status::Ok();
    }
  }

  if ((methods & SSH_AUTH_METHOD_PASSWORD) && prompter.CanPrompt()) {
    tried.push_back("password");
    for (int attempt = 0; attempt < kPassphraseAttempts; ++attempt) {
      auto password = prompter.Ask(host.user + "@" + host.hostname + "'s password: ", false);
      if (!password) break;
      rc = ssh_userauth_password(s, nullptr, password->c_str());
      std::fill(password->begin(), password->end(), '\0');
      if (rc == SSH_AUTH_SUCCESS) {
        auth_method_ = "password";
        return Status::Ok();
      }
      if (rc == SSH_AUTH_ERROR) break;
      prompter.Tell("Permission denied, please try again.");
    }
  }

  std::string offered;
  for (const auto& t : tried) offered += (offered.empty() ? "" : ", ") + t;
  if (offered.empty()) offered = "nothing we could offer";
  std::string accepts;
  if (methods & SSH_AUTH_METHOD_PUBLICKEY) accepts += " publickey";
  if (methods & SSH_AUTH_METHOD_INTERACTIVE) accepts += " keyboard-interactive";
  if (methods & SSH_AUTH_METHOD_PASSWORD) accepts += " password";
  std::string hint = "make sure the server has your public key in ~/.ssh/authorized_keys of " +
                     host.user + " (ssh-copy-id), or set IdentityFile for this host";
  if (!prompter.CanPrompt() &&
      (methods & (SSH_AUTH_METHOD_INTERACTIVE | SSH_AUTH_METHOD_PASSWORD))) {
    hint += "; password and one-time codes need a terminal";
  }
  return MakeError(ErrorCode::kAuth,
                   "permission denied for " + host.user + "@" + host.hostname +
                       " (tried: " + offered + "; the server accepts:" + accepts + ")",
                   hint);
}

}  // namespace tether::ssh
