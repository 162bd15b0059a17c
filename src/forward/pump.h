// A Pump moves bytes both ways between one local socket and one SSH channel.
//
// - Backpressure both ways: it reads the socket only while the channel's remote window
//   is open and nothing is pending toward the channel, and reads the channel only while
//   nothing is pending toward the socket (libssh then holds at most the granted window).
// - Half-close: EOF from one side is passed on (shutdown(SHUT_WR) / channel EOF) while
//   the other direction keeps flowing.
// - The receive window grows with what the local socket drains, as TCP autotuning does:
//   it starts at kStartWindow and doubles for every window the socket takes while keeping
//   up, up to kInitialWindow; past that it doubles, up to kMaxWindow, only when the window
//   is what limits the stream: the socket keeps up and the server leaves the channel
//   waiting (a long link, see kWindowStall). A reader that does not read keeps its
//   channel at kStartWindow. The WindowBudget caps the sum over all channels.
// A failure ends this pump only. Owned and driven by a PumpSet on the loop thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/unique_fd.h"
#include "forward/forward_stats.h"
#include "forward/window_budget.h"
#include "net/event_loop.h"
#include "ssh/channel.h"

namespace tether::forward {

// Every channel's first window. Small, because a granted window cannot be taken back and
// sshd fills it whether or not our reader reads: with 1000 stalled readers at 2 MiB each
// (OpenSSH's window) sshd spent seconds per packet shuffling what it had queued and
// stopped answering keepalives; at 128 KiB they cost it 125 MiB in all.
inline constexpr uint32_t kStartWindow = 128u << 10;
// 2 MiB: OpenSSH's own channel window, enough for loopback and LAN links; reached after
// about 2 MiB drained at the reader's pace.
inline constexpr uint32_t kInitialWindow = 2u << 20;
// The smallest window a channel gets, budget or not (libssh's own opening window).
inline constexpr uint32_t kMinWindow = 64u << 10;
// 128 MiB: about 5 Gbit/s at 200 ms RTT for one stream, past what one core decrypts here
// (about 4 Gbit/s). Measured download through the delay line at 200 ms (bench/long_link.sh,
// one stream, aes128-gcm): a 64 MiB ceiling gave 1637 Mbit/s, 128 MiB 2740, 256 MiB 2843;
// with 16 MiB, 100 ms gave 669 against 2143 with 64 MiB. It is also what one reader that
// stops after a fast start can pin; the WindowBudget caps the sum over all channels.
inline constexpr uint32_t kMaxWindow = 128u << 20;
// The window grows only after kStalledHalvesToGrow half-windows in a row in each of
// which the server left the channel waiting for data at least kWindowStall (from an
// empty read to the next data): that is a sender out of window on a long link. A larger
// window is not free: sshd reads up to the window we grant into its channel buffer and
// the bigger that buffer, the more it spends moving and reallocating it. On loopback
// (2 cores) a 16 MiB window cost sshd 20-50% more CPU per byte than 2 MiB (5x in one
// run of ten), and download fell to 0.4-0.9x OpenSSH. Measured waits on loopback: median 40-130 us,
// at most 22 ms with two extra busy processes on the 2 cores; through a 50 ms RTT relay every half
// window waited 30 ms or more. Links under ~30 ms RTT keep 2 MiB, as OpenSSH does.
inline constexpr std::chrono::milliseconds kWindowStall{20};
inline constexpr int kStalledHalvesToGrow = 2;
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
  void MaybeGrowWindow();
  // Adds `extra` to the window if the budget allows.
  bool GrowWindow(uint32_t extra);

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

  uint32_t window_ = 0;    // receive window we keep granted
  uint32_t reserved_ = 0;  // how much of it the budget holds for us
  uint64_t drained_at_window_ = 0;
  int stalled_halves_ = 0;  // half-windows in a row with a kWindowStall wait
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
