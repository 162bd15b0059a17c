#include "ssh/auth_methods.h"

#include <algorithm>

namespace tether::ssh {
namespace {

constexpr AuthMethod kAll[] = {AuthMethod::kPublicKey, AuthMethod::kKeyboardInteractive,
                               AuthMethod::kPassword};

// The keyword that turns `method` off, and whether it is on for `host`.
std::string_view SwitchName(AuthMethod method) {
  switch (method) {
    case AuthMethod::kPublicKey:
      return "PubkeyAuthentication";
    case AuthMethod::kKeyboardInteractive:
      return "KbdInteractiveAuthentication";
    case AuthMethod::kPassword:
      return "PasswordAuthentication";
  }
  return "";
}

bool Enabled(const config::HostConfig& host, AuthMethod method) {
  switch (method) {
    case AuthMethod::kPublicKey:
      return host.pubkey_authentication;
    case AuthMethod::kKeyboardInteractive:
      return host.kbd_interactive_authentication;
    case AuthMethod::kPassword:
      return host.password_authentication;
  }
  return false;
}

bool Preferred(const config::HostConfig& host, AuthMethod method) {
  const auto& list = host.preferred_authentications;
  return list.empty() ||
         std::find(list.begin(), list.end(), std::string(AuthMethodName(method))) != list.end();
}

}  // namespace

std::string_view AuthMethodName(AuthMethod method) {
  switch (method) {
    case AuthMethod::kPublicKey:
      return "publickey";
    case AuthMethod::kKeyboardInteractive:
      return "keyboard-interactive";
    case AuthMethod::kPassword:
      return "password";
  }
  return "";
}

std::vector<AuthMethod> AuthOrder(const config::HostConfig& host) {
  std::vector<AuthMethod> order;
  auto add = [&](AuthMethod m) {
    if (Enabled(host, m) && std::find(order.begin(), order.end(), m) == order.end()) {
      order.push_back(m);
    }
  };
  if (host.preferred_authentications.empty()) {
    for (AuthMethod m : kAll) add(m);
    return order;
  }
  for (const std::string& name : host.preferred_authentications) {
    for (AuthMethod m : kAll) {
      if (name == AuthMethodName(m)) add(m);
    }
  }
  return order;
}

std::string WhyNotInOrder(const config::HostConfig& host, AuthMethod method) {
  if (!Enabled(host, method)) return std::string(SwitchName(method)) + " is no";
  if (!Preferred(host, method)) return "not in PreferredAuthentications";
  return "";
}

}  // namespace tether::ssh
