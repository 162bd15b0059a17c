// A MuxHost with no SSH behind it, for the mux server's tests and fuzzer. Sessions start
// on the next loop iteration and finish on the one after, as the daemon's would when the
// command is quick (one whose command starts with "sleep" runs until its client goes).
// EndSession cancels both, as the daemon erases a session whose client left (its
// callbacks must never run after that). Forwards succeed unless the listen port is odd.
// `start_error` makes sessions fail to start, `tty_fails` refuses their pty. Loop thread
// only.
#pragma once

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "control/mux_server.h"
#include "net/event_loop.h"

namespace tether::control {

class FakeMuxHost : public MuxHost {
 public:
  explicit FakeMuxHost(net::EventLoop& loop) : loop_(loop) {}

  uint32_t StartSession(const mux::NewSession& request, UniqueFd in, UniqueFd out, UniqueFd err,
                        SessionEvents events) override {
    Keep(session_requests, request);
    const bool runs_on = request.command.rfind("sleep", 0) == 0;
    std::vector<UniqueFd> fds;
    fds.push_back(std::move(in));
    fds.push_back(std::move(out));
    fds.push_back(std::move(err));
    return Start(std::move(events), std::move(fds), runs_on);
  }
  uint32_t StartStdioForward(const mux::StdioForward& request, UniqueFd in, UniqueFd out,
                             SessionEvents events) override {
    Keep(stdio_requests, request);
    std::vector<UniqueFd> fds;
    fds.push_back(std::move(in));
    fds.push_back(std::move(out));
    return Start(std::move(events), std::move(fds));
  }
  void EndSession(uint32_t id) override {
    ++ended_;
    sessions_.erase(id);
  }
  void OpenForward(const mux::Forward& request,
                   std::function<void(Result<uint32_t>)> done) override {
    Keep(forward_requests, request);
    if (request.listen_port % 2 == 1) return done(MakeError("forward", "port in use"));
    done(uint32_t{request.listen_port == 0 ? 40000u : 0u});
  }
  Status CloseForward(const mux::Forward& request) override {
    Keep(forward_requests, request);
    if (request.listen_port % 2 == 1) return MakeError("forward", "no forward listens there");
    return Status::Ok();
  }
  // Throws while `throw_from_pid` is set: a handler bug, for the server's last resort.
  uint32_t Pid() override {
    if (throw_from_pid) throw std::runtime_error("a bug in Pid");
    return 4242;
  }
  bool throw_from_pid = false;
  void Terminate() override { ++terminated_; }
  // The reason the next sessions fail to start with, when not empty.
  std::string start_error;
  bool tty_fails = false;
  // The first requests of each kind, in order (the first few only: the fuzzer runs one
  // host for all its inputs).
  std::vector<mux::NewSession> session_requests;
  std::vector<mux::StdioForward> stdio_requests;
  std::vector<mux::Forward> forward_requests;  // opened and closed

  size_t started() const { return started_; }
  size_t ended() const { return ended_; }
  size_t live() const { return sessions_.size(); }
  int terminated() const { return terminated_; }

 private:
  struct Session {
    SessionEvents events;
    std::vector<UniqueFd> fds;  // held, as the daemon holds the client's descriptors
  };

  template <typename Request>
  static void Keep(std::vector<Request>& kept, const Request& request) {
    constexpr size_t kKeptRequests = 16;
    if (kept.size() < kKeptRequests) kept.push_back(request);
  }

  // `runs_on`: started, but finishes only when its client goes (EndSession).
  uint32_t Start(SessionEvents events, std::vector<UniqueFd> fds, bool runs_on = false) {
    uint32_t id = next_++;
    ++started_;
    sessions_[id] = Session{std::move(events), std::move(fds)};
    loop_.AddTimer(std::chrono::milliseconds(0), [this, id, runs_on] {
      auto it = sessions_.find(id);
      if (it == sessions_.end()) return;
      auto started = it->second.events.started;  // it may end the client, and the session
      if (!start_error.empty()) {
        sessions_.erase(it);
        started(false, start_error, false);
        return;
      }
      started(true, "", tty_fails);
      if (runs_on) return;
      loop_.AddTimer(std::chrono::milliseconds(0), [this, id] {
        auto it = sessions_.find(id);
        if (it == sessions_.end()) return;
        auto finished = std::move(it->second.events.finished);
        sessions_.erase(it);
        finished(0);
      });
    });
    return id;
  }

  net::EventLoop& loop_;
  std::map<uint32_t, Session> sessions_;
  uint32_t next_ = 1;
  size_t started_ = 0;
  size_t ended_ = 0;
  int terminated_ = 0;
};

}  // namespace tether::control
