// A Pump moves bytes both ways between one local socket and one SSH channel.
//
// - Backpressure both ways: it reads the socket only while the channel's remote window
//   is open and nothing is pending toward the channel, and reads the channel only while
//   nothing is pending toward the socket (libssh then holds at most the granted window).
// - Half-close: EOF from one side is passed on (shutdown(SHUT_WR) / channel EOF) while
//   the other direction keeps flowing.
// - The receive window grows with what the local socket drains (forward/receive_window.h).
// A failure ends this pump only. Owned and driven by a PumpSet on the loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/unique_fd.h"
#include "forward/forward_stats.h"
#include "forward/receive_window.h"
#include "forward/window_budget.h"
#include "net/event_loop.h"
#include "ssh/channel.h"

namespace tether::forward {

// Largest socket read toward the channel in one go.
inline constexpr size_t kSocketReadChunk = 256u << 10;

// What all pumps of a daemon share: the loop, a scratch buffer of kMaxWindow bytes
// (one read at a time on the loop thread), and the window budget.
struct PumpContext {
  net::EventLoop* loop = nullptr;
  char* scratch = nullptr;
  size_t scratch_size = 0;
  WindowBudget* budget = nullptr;
};

// What a proxy's pump does besides moving bytes: answer the client once the channel
// opens (or fails), and send bytes the client sent early before anything else.
struct PumpHooks {
  // Called once when the channel opens (ok) or fails (ok false, with the server's
  // reason); returns bytes to write to the socket first (a SOCKS or HTTP reply).
  std::function<std::string(bool ok, const std::string& error)> on_open;
  // Bytes for the channel before anything read from the socket.
  std::string to_channel;
};

class Pump {
 public:
  // `socket` is a connected non-blocking socket; `channel` (an ssh::Channel, or a test's
  // fake) may still be opening.
  Pump(PumpContext& context, UniqueFd socket, std::unique_ptr<ssh::ChannelIo> channel,
       std::shared_ptr<ForwardStats> stats, std::string log_prefix, PumpHooks hooks = {});
  ~Pump();
  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;

  // Moves what can be moved now and updates the socket's poll interest.
  void Service();
  bool done() const { return done_; }
  bool opening() const { return !open_; }
  // True when it has bytes (or a readable socket) for the server but the channel's
  // remote window is closed. libssh has no callback for a window adjustment, so the
  // owner re-services such pumps after every session wake-up.
  bool blocked_on_window() const { return blocked_on_window_; }
  int fd() const { return socket_.get(); }
  const std::string& log_prefix() const { return log_prefix_; }

 private:
  void OnOpened();
  bool ChannelToSocket();
  bool SocketToChannel();
  // Writes from `data`; returns bytes written, or -1 when the socket is broken.
  long WriteSocket(const char* data, size_t len);
  void UpdateInterest();
  void Finish(const std::string& why);

  PumpContext& context_;
  UniqueFd socket_;
  std::unique_ptr<ssh::ChannelIo> channel_;
  std::shared_ptr<ForwardStats> stats_;
  std::string log_prefix_;
  PumpHooks hooks_;

  std::string to_socket_;  // read from the channel, not yet taken by the socket
  size_t to_socket_off_ = 0;
  std::string to_channel_;  // read from the socket, not yet taken by the channel
  size_t to_channel_off_ = 0;

  ReceiveWindow window_;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  unsigned interest_ = ~0u;
  bool open_ = false;
  bool socket_eof_ = false;   // the local side sent EOF
  bool eof_sent_ = false;     // we passed it on to the channel
  bool channel_eof_ = false;  // the server side sent EOF
  bool socket_shut_ = false;  // we passed it on to the socket
  bool blocked_on_window_ = false;
  bool done_ = false;
};

}  // namespace tether::forward
