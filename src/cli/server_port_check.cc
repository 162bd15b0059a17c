#include "cli/server_port_check.h"

#include "cli/format.h"

namespace tether::cli {

std::vector<ServerPortFinding> CheckServerPortHolders(const ServerCommand& run,
                                                      const nlohmann::json& forwards,
                                                      const std::string& alias) {
  std::vector<ServerPortFinding> findings;
  std::vector<uint16_t> checked;
  for (const auto& f : forwards) {
    const std::string kind = f.value("kind", "");
    if (kind != "remote" && kind != "proxy") continue;
    const uint16_t port = ListenPort(f.value("listen", ""));
    if (port == 0) continue;
    const bool listening = f.value("state", "") == "listening";
    auto check = CheckServerPort(run, port, listening);
    if (!check.ok() || check->holder.holding == PortHolding::kUnknown) return {};
    checked.push_back(port);
    if (check->holder.holding != PortHolding::kOther) continue;
    std::string other = check->free_port ? std::to_string(*check->free_port) : "PORT";
    findings.push_back(
        {"server port " + std::to_string(port), "fail",
         DescribeHolder(static_cast<uint16_t>(port), check->holder) +
             (listening ? ", beside this forward's own listener on another address: a "
                          "connection there may reach that account instead"
                        : ": nothing of yours is sent there"),
         kind == "proxy" ? "tether up " + alias + " --proxy=" + other + " (free on the server now)"
                         : "forward another port (" + other +
                               " is free on the server now), or ask that account to let go"});
  }
  if (findings.empty() && !checked.empty()) {
    std::string ports;
    for (uint16_t p : checked) ports += (ports.empty() ? "" : ", ") + std::to_string(p);
    findings.push_back({"server ports", "pass",
                        "no other account holds a forwarded port on the server (" + ports + ")",
                        ""});
  }
  return findings;
}

}  // namespace tether::cli
