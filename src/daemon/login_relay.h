// A login the daemon runs for a person at `tether login HOST` (or `tether up HOST`): when a
// reconnect needs an answer only a person can give (a password, a one-time code, a key's
// passphrase), the daemon's link stays down (LinkState::kNeedsLogin) until someone asks it
// to log in. The daemon then dials as usual, and each prompt the server sends is relayed to
// that client over the control socket, and its answer back (docs/control-protocol.md,
// `login`). So the same daemon, with its listeners, forwards, counters and pid, comes back.
//
// Threads: the dialling thread asks through prompter() and blocks (bounded by
// kAnswerWait); the control commands, the client going away and the login's end run on
// the loop thread, which a wake pipe tells of each new prompt.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "control/control_server.h"
#include "daemon/link_supervisor.h"
#include "net/event_loop.h"
#include "net/wake_pipe.h"
#include "ssh/prompter.h"

namespace tether::daemon {

// How long one prompt waits for the person's answer (sshd's LoginGraceTime is 120 s by
// default; a push to a phone waits inside the server, not here).
inline constexpr std::chrono::seconds kAnswerWait{180};

class LoginRelay {
 public:
  // `loop` and `supervisor` must outlive the relay.
  LoginRelay(net::EventLoop& loop, LinkSupervisor& supervisor, std::string alias);
  ~LoginRelay();
  LoginRelay(const LoginRelay&) = delete;
  LoginRelay& operator=(const LoginRelay&) = delete;

  // Puts `login` and `login_answer` on `server`, and follows its clients going away.
  void Register(control::ControlServer& server);
  // Any prompt waiting, and every later one, gets no answer (`why`): the dialling thread
  // is let go. The destructor does it too.
  void Stop(const std::string& why);

 private:
  // Asked from the dialling thread.
  class Asker : public ssh::Prompter {
   public:
    explicit Asker(LoginRelay& relay) : relay_(relay) {}
    bool CanPrompt() const override;
    std::optional<std::string> Ask(const std::string& prompt, bool echo) override;
    void Tell(const std::string& text) override;
    std::string WhyNot() const override;
    std::string HowToBeAsked() const override;

   private:
    LoginRelay& relay_;
  };

  void OnLogin(const control::Json& request, control::LaterReply reply);
  void OnAnswer(const control::Json& request, control::LaterReply reply);
  void OnClientGone(uint64_t client);
  // The supervisor's word: the login ended.
  void OnFinished(Status result);
  // Sends the next event to the client waiting for one, when there is one to send.
  void Flush();
  // Back to no login: the next `login` starts afresh.
  void Reset();

  net::EventLoop& loop_;
  LinkSupervisor& supervisor_;
  const std::string alias_;
  net::WakePipe wake_;
  Asker asker_{*this};

  // Loop thread: who the login is for (0: nobody), its waiting reply, and its end.
  uint64_t client_ = 0;
  bool client_gone_ = false;  // the login's client went away; the attempt is ending
  std::optional<control::LaterReply> waiting_;
  std::optional<Status> finished_;

  // Shared with the dialling thread.
  mutable std::mutex mu_;
  std::condition_variable answered_;
  std::vector<std::string> told_;     // lines to show before the next prompt
  std::optional<std::string> asked_;  // the prompt waiting for its answer
  bool echo_ = false;
  bool sent_ = false;  // asked_ went to the client
  std::optional<std::string> answer_;
  std::string given_up_;  // why no answer will come ("" while one may)
};

}  // namespace tether::daemon
