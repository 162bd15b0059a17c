// The daemon's ControlPath socket (HOST.mux): OpenSSH's multiplexing protocol, version 4,
// so that stock ssh, scp, rsync and git (with ControlPath set and ControlMaster no), and
// tether exec/ssh, run their sessions over the daemon's connection.
//
// Per client: hello both ways, then requests through a dispatch table. A new session or
// stdio forward also carries the client's descriptors (SCM_RIGHTS, each with one byte of
// data right after the request), which is why this server reads with recvmsg and never
// with read(): a plain read would make the kernel drop them. One session per client
// connection, as ssh's own master. Anything malformed gets MUX_S_FAILURE (when it has a
// request id) or ends that client; the daemon carries on. Loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"
#include "control/mux_codec.h"
#include "net/acceptor.h"
#include "net/event_loop.h"

namespace tether::control {

// What the server asks of the daemon (an I/O seam: tests can give it a fake).
class MuxHost {
 public:
  virtual ~MuxHost() = default;

  struct SessionEvents {
    // The command started (or not: `error`); `tty_failed` when the pty was refused.
    std::function<void(bool ok, const std::string& error, bool tty_failed)> started;
    std::function<void(uint32_t exit_value)> finished;
  };
  // Starts a session (or, with in/out only, a stdio forward); returns its id, which
  // EndSession takes when the client goes away first.
  virtual uint32_t StartSession(const mux::NewSession& request, UniqueFd in, UniqueFd out,
                                UniqueFd err, SessionEvents events) = 0;
  virtual uint32_t StartStdioForward(const mux::StdioForward& request, UniqueFd in, UniqueFd out,
                                     SessionEvents events) = 0;
  virtual void EndSession(uint32_t id) = 0;
  // Adds a forward; `done` gets the allocated port for a remote one asked with port 0
  // (else 0), or why it failed.
  virtual void OpenForward(const mux::Forward& request,
                           std::function<void(Result<uint32_t>)> done) = 0;
  virtual Status CloseForward(const mux::Forward& request) = 0;
  virtual uint32_t Pid() = 0;
  virtual void Terminate() = 0;
};

class MuxServer {
 public:
  // `listener`: a listening unix socket (0600).
  MuxServer(net::EventLoop& loop, UniqueFd listener, std::string path, MuxHost& host);
  ~MuxServer();
  MuxServer(const MuxServer&) = delete;
  MuxServer& operator=(const MuxServer&) = delete;

  // Clients still connected.
  size_t clients() const { return clients_.size(); }
  // ssh -O stop: no new clients; the socket file goes. Sessions carry on.
  void StopListening();
  // What StopListening does to the socket file instead of unlinking it (a ControlPath is
  // removed only while it is still the file we bound).
  void SetSocketRemover(std::function<void()> remove) { remove_socket_ = std::move(remove); }

 private:
  struct Client {
    uint64_t id = 0;
    UniqueFd fd;
    std::string in;
    std::deque<UniqueFd> fds;  // received descriptors, in order
    std::string out;
    bool hello = false;    // the client's hello arrived
    bool closing = false;  // close once `out` is written
    // A request waiting for its descriptors (and their bytes) to arrive.
    std::optional<mux::ClientMessage> waiting;
    bool has_session = false;
    uint32_t session = 0;
  };
  using Handler = void (MuxServer::*)(Client& c, mux::ClientMessage& message);

  void OnAccepted(UniqueFd conn);
  void OnClient(uint64_t id, unsigned events);
  bool ReadSome(Client& c);
  void Process(Client& c);
  // Runs the handler of a valid, decoded request; an exception from it ends the client
  // with MUX_S_FAILURE and is logged, never escapes into the loop.
  void Dispatch(Client& c, uint32_t type, mux::ClientMessage& message);
  // The request's descriptors: true when all have arrived (taken off the queue).
  bool TakeFds(Client& c, size_t count, std::vector<UniqueFd>* out);
  void Send(Client& c, const std::string& payload);
  void Flush(Client& c);
  void Drop(uint64_t id);
  Client* Find(uint64_t id);

  // The callbacks of a session (or stdio forward) of client `id`: they answer its request
  // `rid` once it runs, and end the client when it ends.
  MuxHost::SessionEvents SessionEventsFor(uint64_t id, uint32_t rid,
                                          std::shared_ptr<uint32_t> session_id, bool exit_message);
  // What a session and a stdio forward share: take the request's `fd_count` descriptors
  // (or wait for them), allow one per client, and run `start` with the events of
  // SessionEventsFor; `start` returns the session's id.
  void StartClientSession(
      Client& c, mux::ClientMessage& m, uint32_t rid, size_t fd_count, bool exit_message,
      const std::function<uint32_t(std::vector<UniqueFd>&, MuxHost::SessionEvents)>& start);
  void OnHello(Client& c, mux::ClientMessage& m);
  void OnNewSession(Client& c, mux::ClientMessage& m);
  void OnStdioForward(Client& c, mux::ClientMessage& m);
  void OnAliveCheck(Client& c, mux::ClientMessage& m);
  void OnTerminate(Client& c, mux::ClientMessage& m);
  void OnForward(Client& c, mux::ClientMessage& m);
  void OnStopListening(Client& c, mux::ClientMessage& m);
  void OnProxy(Client& c, mux::ClientMessage& m);

  net::EventLoop& loop_;
  UniqueFd listener_;
  std::unique_ptr<net::Acceptor> acceptor_;  // watches listener_ while it is open
  std::string path_;
  std::function<void()> remove_socket_;
  MuxHost& host_;
  std::map<uint32_t, Handler> handlers_;
  std::unordered_map<uint64_t, std::unique_ptr<Client>> clients_;
  uint64_t next_id_ = 1;
};

}  // namespace tether::control
