// Who connected: the owner check of the server proxy and of reverse dynamic forwards.
//
// sshd opens a forwarded-tcpip channel for each connection its listener accepts and names
// the address and port the connection came from. On Linux the socket that connected from
// there is in the server's /proc/net/tcp{,6} with the uid of the account whose process
// holds it. The check asks a small shell loop kept running on the server over the daemon's
// own connection (one session channel, started once; `id -u` first, then a `grep` of the
// two tables per question) and compares that uid with the account we log in as: nothing
// to install, nothing in the clients' proxy URLs, one round trip per connection.
//
// Fails closed: a socket not found (it closed first, or sits in time-wait with no
// process), a check that ends or does not answer within kOwnerCheckTimeout, and too many
// questions at once are each "not the owner". A server whose table cannot be read (not
// Linux, a hardened /proc) says so once; its forwards fall back to what their owner set
// (the server proxy to its per-daemon credential). Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "forward/server_loop.h"
#include "net/event_loop.h"

namespace tether::forward {

// A question not answered by then (a loop that has not greeted by then of its start) is
// "not the owner", and the shell loop is started anew.
inline constexpr std::chrono::seconds kOwnerCheckTimeout{10};
// Questions in flight at most; more are refused at once (a flood from another account
// must not grow the daemon).
inline constexpr size_t kOwnerCheckMaxPending = 512;
// The shell loop is started again at most this often after it ends.
inline constexpr std::chrono::seconds kOwnerCheckRestart{2};
// What one answer may hold: a port's lines in both tables (each ~150 bytes).
inline constexpr size_t kOwnerCheckMaxAnswer = 64u << 10;

class OwnerCheck {
 public:
  enum class Verdict {
    kOwner,        // a process of the account we log in as
    kOther,        // another account's (uid in Answer)
    kUnknown,      // not found, not answered in time, too many at once: refused
    kUnavailable,  // the server's table cannot be read: the forward's fallback decides
  };
  struct Answer {
    Verdict verdict = Verdict::kUnknown;
    uint32_t uid = 0;     // kOwner, kOther
    std::string why;      // kUnknown, kUnavailable
    std::string account;  // AccountOf: the uid's name on the server ("" when it has none)
  };
  using Done = std::function<void(const Answer&)>;
  using Ticket = uint64_t;

  // Runs the check's shell loop on the server (forward/server_loop.h).
  using Ended = ServerLoop::Ended;
  using Runner = ServerLoop::Runner;

  // What is known of the server, for status.
  enum class Mode { kStarting, kByUid, kUnavailable };

  OwnerCheck(net::EventLoop& loop, Runner run, std::string log_prefix);
  ~OwnerCheck();
  OwnerCheck(const OwnerCheck&) = delete;
  OwnerCheck& operator=(const OwnerCheck&) = delete;

  // Asks who holds the socket connected from origin_ip:origin_port to the listener on
  // listen_port. `done` is called once, from the loop and never inside Check, unless the
  // ticket is cancelled first.
  Ticket Check(const std::string& origin_ip, uint16_t origin_port, uint16_t listen_port, Done done);
  // Asks which account listens on `port` on the server (a forward the server refused:
  // whose is the port? one it granted: is another account there too, on another
  // address?). kOther with its uid when any other account listens there, else kOwner, or
  // kUnknown when nobody listens.
  Ticket WhoListens(uint16_t port, Done done);
  // Asks the name of account `uid` on the server (its passwd entry), to name a squatter:
  // `done` gets the uid's verdict against ours and `account`.
  Ticket AccountOf(uint32_t uid, Done done);
  void Cancel(Ticket ticket);
  // Starts the shell loop now, so the first connection does not wait for its start.
  void Warm();

  Mode mode() const { return mode_; }
  uint32_t owner_uid() const { return owner_uid_; }
  // Why the table cannot be read (kUnavailable).
  const std::string& unavailable_why() const { return unavailable_why_; }

  // The shell loop run on the server (public for its test).
  static const char* const kCommand;

 private:
  struct Question {
    Ticket ticket;
    std::string origin_ip;  // empty: a WhoListens question about listen_port
    uint16_t origin_port;
    uint16_t listen_port;
    std::optional<uint32_t> account_of;  // an AccountOf question
    // The port the server is asked about.
    uint16_t asked_port() const { return origin_ip.empty() ? listen_port : origin_port; }
    Done done;  // null once cancelled (the answer still arrives in order)
    bool sent = false;
  };

  void SendQuestions();
  // The shell loop's events (ServerLoop::Events).
  void OnGreeted(uint32_t uid);
  void OnUnavailable(const std::string& why);
  void OnAnswer(const std::string& answer);
  // The run failed: every question waiting is answered kUnknown.
  void Stopped(const std::string& why);
  // Every question still waiting gets `answer` (on the next round of the loop).
  void AnswerAll(const Answer& answer);
  void Deliver(Done done, Answer answer);
  Ticket Ask(std::string origin_ip, uint16_t origin_port, uint16_t listen_port, Done done,
             std::optional<uint32_t> account_of = std::nullopt);

  net::EventLoop& loop_;
  std::string log_prefix_;
  Mode mode_ = Mode::kStarting;
  uint32_t owner_uid_ = 0;
  std::string unavailable_why_;

  ServerLoop server_;

  std::deque<Question> questions_;
  Ticket next_ticket_ = 1;
  // Answers to hand out on the next round (never inside the caller's own call).
  std::vector<std::pair<Done, Answer>> deliveries_;
  net::EventLoop::TimerId delivery_timer_ = 0;
};

}  // namespace tether::forward
