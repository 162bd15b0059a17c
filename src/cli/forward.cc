// tether forward HOST -L|-R|-D SPEC...: adds forwards to a running daemon;
// tether forward HOST --cancel SPEC: removes one (connections being served live on, as
// with ssh -O cancel).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/format.h"
#include "cli/hosts.h"
#include "config/forward_spec.h"
#include "control/control_client.h"
#include "daemon/state_dir.h"
#include "forward/forward.h"

namespace tether::cli {
namespace {

constexpr auto kControlTimeout = std::chrono::seconds(5);
// How long we wait for the server to answer remote-forward requests.
constexpr auto kRequestPoll = std::chrono::milliseconds(100);
constexpr int kMaxRequestPolls = 100;  // 10 s

// The reply's fields, or its error as an Error.
Result<nlohmann::json> Ask(const daemon::StateDir& state, const std::string& alias,
                           const nlohmann::json& request) {
  auto reply = control::Request(state.SocketPath(alias), request, kControlTimeout);
  if (!reply.ok()) return reply;
  if (!reply->value("ok", false)) {
    return MakeError("forward", alias + ": " + reply->value("error", "the daemon refused"),
                     reply->value("hint", ""));
  }
  return reply;
}

// "-L 8000:localhost:8000" -> (local, "8000:localhost:8000"); "8000" -> (any, "8000").
std::pair<std::string, std::string> SplitKind(const std::string& text) {
  if (text.size() >= 2 && text[0] == '-' && (text[1] == 'L' || text[1] == 'R' || text[1] == 'D')) {
    std::string rest = text.substr(2);
    while (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
    return {text[1] == 'L' ? "local" : (text[1] == 'R' ? "remote" : "dynamic"), rest};
  }
  return {"", text};
}

}  // namespace

int AddForwardsToRunning(const daemon::StateDir& state, const std::string& alias,
                         const std::vector<config::ForwardSpec>& specs) {
  int code = 0;
  std::vector<std::string> added;  // specs the server still has to answer for
  for (const auto& spec : specs) {
    auto reply = Ask(state, alias,
                     {{"cmd", "forward"},
                      {"kind", forward::ForwardKindName(spec.kind)},
                      {"spec", spec.ToString()}});
    if (!reply.ok()) {
      PrintError(reply.error());
      code = 1;
      continue;
    }
    if (reply->value("added", false)) added.push_back(spec.ToString());
  }
  // Remote forwards are answered by the server: wait (bounded) until none is still asking.
  nlohmann::json forwards = nlohmann::json::array();
  for (int i = 0; i < kMaxRequestPolls; ++i) {
    auto status = Ask(state, alias, {{"cmd", "status"}});
    if (!status.ok()) {
      PrintError(status.error());
      return 1;
    }
    forwards = (*status)["forwards"];
    bool asking = false;
    for (const auto& f : forwards) {
      if (f.value("state", "") == "requesting") asking = true;
    }
    if (!asking) break;
    if (i == 0)
      std::fprintf(stderr, "tether: %s: waiting for the server to listen...\n", alias.c_str());
    std::this_thread::sleep_for(kRequestPoll);
  }
  for (const auto& f : forwards) {
    std::string state_name = f.value("state", "");
    std::printf("  %s  (%s)\n", ForwardFlagLine(f).c_str(), state_name.c_str());
    std::string error = f.value("error", "");
    bool is_new = std::find(added.begin(), added.end(), f.value("spec", "")) != added.end();
    if (!error.empty()) std::fprintf(stderr, "tether: %s: %s\n", alias.c_str(), error.c_str());
    if (is_new && state_name == "failed") code = 1;
  }
  std::fflush(stdout);
  return code;
}

int RunForward(const GlobalOptions& /*global*/, const ForwardOptions& options) {
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  const std::string name = daemon::FileNameFor(options.host);
  if (!ProbeHost(*state, name).running) {
    PrintError(MakeError("forward", options.host + " is not up",
                         "start it with `tether up " + options.host + "` and the forwards"));
    return 1;
  }
  int code = 0;
  bool cancelled_remote = false;
  for (const auto& text : options.cancels) {
    auto [kind, spec] = SplitKind(text);
    nlohmann::json request = {{"cmd", "cancel"}, {"spec", spec}};
    if (!kind.empty()) request["kind"] = kind;
    auto reply = Ask(*state, name, request);
    if (!reply.ok()) {
      PrintError(reply.error());
      code = 1;
      continue;
    }
    std::printf("cancelled %s\n", ForwardFlagLine((*reply)["cancelled"]).c_str());
    if ((*reply)["cancelled"].value("kind", "") == "remote") cancelled_remote = true;
  }
  // A cancelled -R is over when the server has answered: it stops listening first. Wait
  // (bounded) until no request is unanswered, so the port is free when we return.
  for (int i = 0; cancelled_remote && i < kMaxRequestPolls; ++i) {
    auto status = Ask(*state, name, {{"cmd", "status"}});
    if (!status.ok() || status->value("server_requests", 0) == 0) break;
    if (i == 0) {
      std::fprintf(stderr, "tether: %s: waiting for the server to stop listening...\n",
                   options.host.c_str());
    }
    std::this_thread::sleep_for(kRequestPoll);
  }
  std::vector<config::ForwardSpec> specs;
  const std::pair<config::ForwardKind, const std::vector<std::string>*> groups[] = {
      {config::ForwardKind::kLocal, &options.local_forwards},
      {config::ForwardKind::kRemote, &options.remote_forwards},
      {config::ForwardKind::kDynamic, &options.dynamic_forwards}};
  for (const auto& [kind, texts] : groups) {
    for (const auto& text : *texts) {
      auto spec = config::ParseForwardSpec(kind, text);
      if (!spec.ok()) {
        PrintError(spec.error());
        return 1;
      }
      specs.push_back(*spec);
    }
  }
  if (!specs.empty()) {
    std::printf("%s forwards:\n", options.host.c_str());
    code = std::max(code, AddForwardsToRunning(*state, name, specs));
  }
  return code;
}

}  // namespace tether::cli
