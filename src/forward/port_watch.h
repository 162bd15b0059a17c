// Ports that forward themselves (`tether up --auto-forward`): a port a process of the
// account we log in as starts listening on, on the server's loopback or wildcard address,
// gets a -L listener on the laptop's 127.0.0.1 at the same port (or the next free one);
// when it stops listening the listener goes.
//
// Two parts. AutoForwardPlan decides (pure: the server's listeners in, binds and unbinds
// out through a Sink), and is unit-tested against fakes. PortWatch asks the server: a
// shell loop kept running over the daemon's connection (one session channel) prints the
// LISTEN lines of /proc/net/tcp{,6} when asked, about every kPortWatchInterval, and the
// command line of a socket's process on request. Nothing is installed on the server; the
// lines are parsed by forward/socket_table.h as the owner check's are.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "forward/server_loop.h"
#include "forward/socket_table.h"
#include "net/event_loop.h"

namespace tether::forward {

// How often the server's listeners are read.
inline constexpr std::chrono::seconds kPortWatchInterval{2};
// A watch whose session does not greet, or whose read is not answered, within this is
// started anew.
inline constexpr std::chrono::seconds kPortWatchStall{5};
// A port missing from this many reads in a row is gone: one read may fall between a
// server's close and its listen again (a restart), and it is gone within ~2 intervals.
inline constexpr int kPortWatchMissingReads = 2;
// Auto forwards at most, unless raised.
inline constexpr size_t kAutoForwardDefaultMax = 20;
// Ports tried past a taken one on the laptop.
inline constexpr int kAutoForwardPortTries = 32;

struct PortRange {
  uint16_t first = 0;
  uint16_t last = 0;
  bool Contains(uint16_t port) const { return port >= first && port <= last; }
  bool operator==(const PortRange&) const = default;
};

// "8000-8999,6006" (commas or blanks between); errors name the bad part.
Result<std::vector<PortRange>> ParsePortRanges(std::string_view text);
// The same ranges written as ParsePortRanges reads them ("8000-8999,6006"; "" for none).
std::string FormatPortRanges(const std::vector<PortRange>& ranges);

struct AutoForwardPolicy {
  size_t max = kAutoForwardDefaultMax;
  std::vector<PortRange> allow;  // empty: every port
  std::vector<PortRange> deny;
  bool Admits(uint16_t port) const;
};

// A socket listening on the server.
struct ServerListener {
  uint16_t port = 0;
  uint64_t inode = 0;  // of one of its sockets, for its process's command line
  bool operator==(const ServerListener&) const = default;
};

// The ports `uid` listens on in `table` on a loopback or wildcard address (one entry a
// port, in port order). Sockets without a process (inode 0) are left out.
std::vector<ServerListener> ListenersOf(const std::vector<SocketEntry>& table, uint32_t uid);

class AutoForwardPlan {
 public:
  // What the plan does on the laptop.
  class Sink {
   public:
    virtual ~Sink() = default;
    // Listens on the laptop's local_port for server_port; false when it cannot (taken).
    virtual bool Bind(uint16_t server_port, uint16_t local_port, uint64_t inode) = 0;
    // Stops listening for server_port (connections in flight finish).
    virtual void Unbind(uint16_t server_port) = 0;
  };

  AutoForwardPlan(AutoForwardPolicy policy, Sink& sink) : policy_(std::move(policy)), sink_(sink) {}

  // One read of the server: `listening` the owner's listeners, `excluded` ports never
  // forwarded (sshd's, tether's own on the server, the targets of the user's -L forwards).
  void Update(const std::vector<ServerListener>& listening, const std::set<uint16_t>& excluded);
  // The user cancelled the auto forward of server_port: it stays away while the daemon
  // runs (a server that listens again elsewhere is a new port, and forwarded).
  void Cancelled(uint16_t server_port);

  // The laptop port of server_port's auto forward, if it has one.
  std::optional<uint16_t> LocalPortOf(uint16_t server_port) const;
  size_t size() const { return active_.size(); }
  // Ports left out by the cap at the last read.
  size_t capped() const { return capped_; }

 private:
  struct Active {
    uint16_t local_port = 0;
    int missing = 0;  // reads in a row without it
  };
  // Binds server_port at the port it had before, else at its own, else the next free.
  bool Place(const ServerListener& listener);

  AutoForwardPolicy policy_;
  Sink& sink_;
  std::map<uint16_t, Active> active_;
  std::set<uint16_t> cancelled_;
  // Where each server port was last forwarded: after it went and came back (a restart of
  // the server process) it gets the same laptop port when that is free.
  std::map<uint16_t, uint16_t> remembered_;
  std::set<uint16_t> failed_;  // could not be bound anywhere: not tried again each read
  size_t capped_ = 0;
};

// The name to show for a process from its command line (arguments separated by '\x1f'):
// the program's base name, or the script's for an interpreter (python .../jupyter-lab).
std::string ProcessName(std::string_view cmdline);
// The URL to open on the laptop for a well-known server, from its command line: Jupyter
// (with the token of its arguments), TensorBoard, vLLM (/v1/models), Gradio. "" for others.
std::string WellKnownUrl(std::string_view cmdline, uint16_t local_port);

class PortWatch {
 public:
  // Runs the watch's shell loop on the server (forward/server_loop.h).
  using Ended = ServerLoop::Ended;
  using Runner = ServerLoop::Runner;
  // One read: the whole listen table and the uid we log in as.
  using OnTable = std::function<void(const std::vector<SocketEntry>& table, uint32_t uid)>;
  using OnCommandLine = std::function<void(const std::string& cmdline)>;

  PortWatch(net::EventLoop& loop, Runner run, OnTable on_table, std::string log_prefix);
  ~PortWatch();
  PortWatch(const PortWatch&) = delete;
  PortWatch& operator=(const PortWatch&) = delete;

  // Reads the server every kPortWatchInterval from now on.
  void Start();
  // The command line of the process holding socket `inode` ('\x1f' between arguments; ""
  // when unknown). `done` from the loop, never inside this call.
  void CommandLineOf(uint64_t inode, OnCommandLine done);
  // Why the server cannot be watched ("" while it can).
  const std::string& unavailable() const { return unavailable_; }

  static const char* const kCommand;

 private:
  struct Question {
    uint64_t inode = 0;  // 0: the listen table
    OnCommandLine done;
  };
  void Tick();
  void Ask(Question question);
  // The shell loop's events (ServerLoop::Events).
  void OnAnswer(const std::string& answer);
  void OnStopped(const std::string& why, bool silent);
  // Every question waiting is answered "" (on the loop's next round).
  void FailQuestions();

  net::EventLoop& loop_;
  OnTable on_table_;
  std::string log_prefix_;
  std::string unavailable_;
  std::deque<Question> questions_;
  net::EventLoop::TimerId tick_timer_ = 0;
  ServerLoop server_;
};

}  // namespace tether::forward
