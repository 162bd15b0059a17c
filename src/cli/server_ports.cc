#include "cli/server_ports.h"

#include <chrono>

#include "cli/remote_command.h"
#include "common/text.h"

namespace tether::cli {
namespace {

constexpr int kStateListen = 0x0A;
// The check is a cat of two small tables; a server that takes longer is not answering.
constexpr std::chrono::seconds kServerCommandTimeout{10};

}  // namespace

const char* const kListenersCommand =
    "if [ -r /proc/net/tcp ]; then echo \"uid $(id -u)\"; "
    "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; else echo none; fi";

Result<ServerListeners> ParseServerListeners(std::string_view output) {
  ServerListeners out;
  bool greeted = false;
  std::string table;
  for (std::string_view line : SplitLines(output)) {
    if (!greeted) {
      // A login shell's rc may print before the command: skipped up to the greeting.
      std::string_view t = Trim(line);
      if (t == "none") return out;
      if (t.rfind("uid ", 0) != 0) continue;
      auto uid = ParseUint(Trim(t.substr(4)));
      if (!uid || *uid > UINT32_MAX) {
        return MakeError("server ports",
                         "the server's uid line is garbled: " + EscapeForLog(t, 80));
      }
      out.our_uid = static_cast<uint32_t>(*uid);
      greeted = true;
      continue;
    }
    table.append(line);
    table += '\n';
  }
  if (!greeted) return MakeError("server ports", "the server did not say which uid we are");
  out.readable = true;
  for (auto& e : forward::ParseSocketTable(table)) {
    // inode 0: no process holds it, and its uid means nothing.
    if (e.state == kStateListen && e.inode != 0) out.listening.push_back(std::move(e));
  }
  return out;
}

PortHolder WhoHolds(const ServerListeners& listeners, uint16_t port, bool our_forward_active) {
  PortHolder holder;
  if (!listeners.readable) return holder;
  holder.holding = PortHolding::kFree;
  for (const auto& e : listeners.listening) {
    if (e.local_port != port) continue;
    if (e.uid != listeners.our_uid) {
      return {PortHolding::kOther, e.uid, ""};
    }
    holder = {our_forward_active ? PortHolding::kOurs : PortHolding::kOurAccount, e.uid, ""};
  }
  return holder;
}

std::optional<uint16_t> FreePortAfter(const ServerListeners& listeners, uint16_t port) {
  if (!listeners.readable) return std::nullopt;
  for (int p = port + 1; p <= 65535 && p <= port + kFreePortSearch; ++p) {
    bool taken = false;
    for (const auto& e : listeners.listening) {
      if (e.local_port == p) taken = true;
    }
    if (!taken) return static_cast<uint16_t>(p);
  }
  return std::nullopt;
}

std::string DescribeHolder(uint16_t port, const PortHolder& holder) {
  std::string where = "port " + std::to_string(port) + " on the server";
  std::string who = "uid " + std::to_string(holder.uid) +
                    (holder.account.empty() ? "" : " (" + holder.account + ")");
  switch (holder.holding) {
    case PortHolding::kUnknown:
      return "who holds " + where + " cannot be read there";
    case PortHolding::kFree:
      return where + " is free";
    case PortHolding::kOurs:
      return where + " is held by our forward (" + who + ")";
    case PortHolding::kOurAccount:
      return where + " is held by " + who +
             ", your own account, but not by this forward (an sshd of an earlier connection "
             "frees it when it notices)";
    case PortHolding::kOther:
      return where + " is held by " + who + ", another account";
  }
  return where;
}

Result<PortCheck> CheckServerPort(const ServerCommand& run, uint16_t port,
                                  bool our_forward_active) {
  auto out = run(kListenersCommand);
  if (!out.ok()) return out.take_error();
  auto listeners = ParseServerListeners(*out);
  if (!listeners.ok()) return listeners.take_error();
  PortCheck check;
  check.holder = WhoHolds(*listeners, port, our_forward_active);
  check.free_port = FreePortAfter(*listeners, port);
  if (check.holder.holding == PortHolding::kOther) {
    // Only digits reach the command line.
    auto passwd = run("getent passwd " + std::to_string(check.holder.uid));
    if (passwd.ok()) {
      if (auto entry = FindPasswdEntry(*passwd, check.holder.uid))
        check.holder.account = entry->name;
    }
  }
  return check;
}

std::optional<Error> RefuseProxyAddress(const std::string& host, uint16_t port,
                                        const std::string& state, const std::string& why,
                                        const Result<PortCheck>& check) {
  const bool listening = state == "listening";
  const std::string free_port =
      check.ok() && check->free_port ? std::to_string(*check->free_port) : std::string("PORT");
  // A proxy that does not listen gives way to `up --proxy=OTHER`; one the daemon believes
  // listens is cancelled first.
  const std::string other_port =
      listening ? "cancel it (tether forward " + host + " --cancel -R " + std::to_string(port) +
                      ") and start it on another: tether up " + host + " --proxy=" + free_port
                : "another port: tether up " + host + " --proxy=" + free_port;
  if (check.ok() && check->holder.holding == PortHolding::kOther) {
    return MakeError("env",
                     DescribeHolder(port, check->holder) +
                         ": the server proxy's address there is not ours, and nothing of yours "
                         "is sent to it",
                     other_port);
  }
  if (!listening) {
    return MakeError("env",
                     "the server proxy of " + host + " does not listen on the server's port " +
                         std::to_string(port) + " (" + (state.empty() ? "?" : state) + ")" +
                         (why.empty() ? "" : ": " + why),
                     "see `tether status " + host + "`; " + other_port);
  }
  if (!check.ok()) {
    return MakeError("env",
                     "cannot tell who holds port " + std::to_string(port) +
                         " on the server: " + check.error().message,
                     "see `tether status " + host + "` and `tether doctor " + host + "`");
  }
  if (check->holder.holding == PortHolding::kFree) {
    return MakeError("env",
                     "the daemon says the server proxy listens, but nothing listens on port " +
                         std::to_string(port) + " on the server",
                     "see `tether status " + host + "`; it is asked for again after a reconnect");
  }
  return std::nullopt;
}

ServerCommand DaemonServerCommand(const daemon::StateDir& state, const std::string& host) {
  return [&state, host](const std::string& command) -> Result<std::string> {
    auto r = RunRemoteCommand(state, host, command, "", kServerCommandTimeout);
    if (!r.ok()) return r.take_error();
    return r->out;
  };
}

}  // namespace tether::cli
