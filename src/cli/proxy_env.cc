#include "cli/proxy_env.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/format.h"
#include "cli/server_ports.h"
#include "control/control_client.h"

namespace tether::cli {
namespace {

// How long `env` and `run` wait for the owner check's first answer; past it the token is
// handed out (the proxy takes it whatever the check says).
constexpr std::chrono::seconds kOwnerCheckWait{5};

std::string Quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

Variables ProxyVariables(uint16_t port, const std::string& user, const std::string& token) {
  std::string auth = user.empty() ? "" : user + ":" + token + "@";
  std::string where = "127.0.0.1:" + std::to_string(port);
  std::string http = "http://" + auth + where;
  // socks5h: names are resolved at the proxy, that is through the laptop, which matters on
  // a server without DNS for the outside world.
  std::string socks = "socks5h://" + auth + where;
  std::string no_proxy = "localhost,127.0.0.1,::1";
  return {{"http_proxy", http},   {"https_proxy", http}, {"HTTP_PROXY", http},
          {"HTTPS_PROXY", http},  {"ALL_PROXY", socks},  {"all_proxy", socks},
          {"no_proxy", no_proxy}, {"NO_PROXY", no_proxy}};
}

Result<Variables> FetchProxyVariables(const daemon::StateDir& state, const std::string& host) {
  auto reply = control::Request(state.SocketPath(host), {{"cmd", "env"}}, std::chrono::seconds(5));
  // Right after `up` the owner check may still be starting (one login shell on the
  // server): its answer decides whether a token goes into the variables, so it is worth
  // a short wait.
  auto give_up = std::chrono::steady_clock::now() + kOwnerCheckWait;
  while (reply.ok() && reply->value("access", "") == "checking" &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    reply = control::Request(state.SocketPath(host), {{"cmd", "env"}}, std::chrono::seconds(5));
  }
  if (!reply.ok()) return reply.take_error();
  if (!reply->value("ok", false)) {
    return MakeError("env", reply->value("error", "the daemon refused"), reply->value("hint", ""));
  }
  // Until the server listens for us, the address may be another account's listener (a
  // port taken while we were down): nothing of ours is sent there. And a daemon that says
  // it listens may not know yet that its link died and another account took the port:
  // the server's own table says whose the port is before the address is handed out.
  const uint16_t port = static_cast<uint16_t>(reply->value("port", 0));
  const std::string proxy_state = reply->value("state", "");
  auto check = CheckServerPort(DaemonServerCommand(state, host), port, proxy_state == "listening");
  if (auto refused = RefuseProxyAddress(host, port, proxy_state, reply->value("why", ""), check)) {
    return *refused;
  }
  return ProxyVariables(static_cast<uint16_t>(reply->value("port", 0)), reply->value("user", ""),
                        reply->value("token", ""));
}

Result<Variables> FetchLocalProxyVariables(const daemon::StateDir& state, const std::string& host) {
  auto reply =
      control::Request(state.SocketPath(host), {{"cmd", "status"}}, std::chrono::seconds(5));
  if (!reply.ok()) return reply.take_error();
  for (const auto& f : reply->value("forwards", nlohmann::json::array())) {
    if (f.value("kind", "") != "dynamic") continue;
    std::string listen = f.value("listen", "");
    const uint16_t port = ListenPort(listen);
    if (port == 0) continue;
    Variables vars = ProxyVariables(port, "", "");
    // The -D port listens where it was asked to (127.0.0.1 unless told otherwise).
    std::string where = listen;
    for (auto& [name, value] : vars) {
      if (name.find("proxy") == std::string::npos && name.find("PROXY") == std::string::npos)
        continue;
      if (name == "no_proxy" || name == "NO_PROXY") continue;
      value = (name == "ALL_PROXY" || name == "all_proxy" ? "socks5h://" : "http://") + where;
    }
    return vars;
  }
  return MakeError("env", host + " has no -D forward",
                   "add one: tether forward " + host + " -D 1080");
}

std::string FormatExports(const Variables& vars, const std::string& shell) {
  std::string out;
  for (const auto& [name, value] : vars) {
    if (shell == "fish") {
      out += "set -gx " + name + " " + Quote(value) + "\n";
    } else {
      out += "export " + name + "=" + Quote(value) + "\n";
    }
  }
  return out;
}

std::string ShellPrefix(const Variables& vars) {
  std::string out = "export";
  for (const auto& [name, value] : vars) out += " " + name + "=" + Quote(value);
  return out + "; ";
}

}  // namespace tether::cli
