// tether login HOST: see cli/login.h.
#include "cli/login.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/hosts.h"
#include "config/ssh_config.h"
#include "control/control_client.h"

namespace tether::cli {
namespace {

// How long one reply may take: the daemon answers `login` once the server's first prompt
// is in (a dial bounded by ConnectTimeout, after an attempt already in flight), and an
// answer once the server has judged it, which for a push to a phone waits on the person.
constexpr std::chrono::seconds kReplyWait{240};
// Prompts in one login at most (several factors, each asked a few times).
constexpr int kMaxPrompts = 32;

void Wipe(std::string& secret) { std::fill(secret.begin(), secret.end(), '\0'); }

}  // namespace

int LoginThroughDaemon(const daemon::StateDir& state, const std::string& alias,
                       ssh::Prompter& prompter) {
  auto connection = control::ControlConnection::Open(state.SocketPath(alias));
  if (!connection.ok()) {
    PrintError(MakeError("login",
                         alias + ": the daemon does not answer: " + connection.error().message,
                         "tether status " + alias));
    return 1;
  }
  std::fprintf(stderr, "tether: %s: logging in again; the server's prompts follow\n",
               alias.c_str());
  nlohmann::json request = {{"cmd", "login"}};
  for (int prompts = 0; prompts <= kMaxPrompts; ++prompts) {
    auto reply = connection->Request(request, kReplyWait);
    if (request.contains("answer")) {
      // Wiped from our copy (the request's text was wiped where it was sent).
      auto* answer = request["answer"].get_ptr<std::string*>();
      if (answer != nullptr) Wipe(*answer);
    }
    if (!reply.ok()) {
      PrintError(MakeError("login", alias + ": " + reply.error().message));
      return 1;
    }
    if (!reply->value("ok", false)) {
      PrintError(MakeError("login", alias + ": " + reply->value("error", "refused"),
                           reply->value("hint", "")));
      return 1;
    }
    for (const auto& line : reply->value("tell", nlohmann::json::array())) {
      if (line.is_string()) prompter.Tell(line.get<std::string>());
    }
    const std::string event = reply->value("event", "");
    if (event == "done") {
      if (reply->value("already_up", false)) {
        std::printf("%s is up: no login needed\n", alias.c_str());
      } else {
        std::printf("%s: logged in; the link is up again, with its forwards\n", alias.c_str());
      }
      return 0;
    }
    if (event == "failed") {
      PrintError(MakeError("auth", alias + ": " + reply->value("error", "the login failed"),
                           reply->value("hint", "")));
      std::fprintf(stderr,
                   "tether: %s stays %s; its listeners stay open: `tether login %s` "
                   "to try again\n",
                   alias.c_str(), reply->value("state", "down").c_str(), alias.c_str());
      return 1;
    }
    if (event != "prompt") {
      PrintError(MakeError("login", alias + ": the daemon said \"" + event + "\""));
      return 1;
    }
    const std::string prompt = reply->value("prompt", "");
    auto answer = prompter.Ask(prompt, reply->value("echo", false));
    if (!answer) {
      // Closing the connection ends the daemon's attempt; the daemon keeps waiting.
      std::string why = prompter.WhyNot();
      PrintError(MakeError("login", alias + ": no answer" + (why.empty() ? "" : ": " + why),
                           prompter.CanPrompt() ? "" : prompter.HowToBeAsked()));
      return 1;
    }
    request = {{"cmd", "login_answer"}, {"answer", std::move(*answer)}};
    Wipe(*answer);
  }
  PrintError(MakeError(
      "login", alias + ": more than " + std::to_string(kMaxPrompts) + " prompts: given up"));
  return 1;
}

int RunLogin(const GlobalOptions& global, const LoginOptions& options) {
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  HostProbe probe = ProbeHost(*state, options.host);
  if (!probe.running) {
    PrintError(MakeError("login", options.host + " is not up",
                         "tether up " + options.host + " logs in and starts its daemon"));
    return 1;
  }
  // BatchMode and the askpass rules of the host, as `up` would ask.
  config::ReadOptions read;
  read.config_file = global.config_file;
  auto host = config::ReadHostConfig(options.host, read);
  ssh::TtyPrompter prompter(host.ok() && host->batch_mode);
  return LoginThroughDaemon(*state, options.host, prompter);
}

}  // namespace tether::cli
