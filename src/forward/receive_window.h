// The receive window of one channel, forward or session (exec, mux sessions, ssh -W),
// grown as TCP autotuning grows a socket buffer: it starts at kStartWindow and doubles for
// every window the local reader takes while keeping up, up to kInitialWindow; past that
// it doubles, up to kWindowCeiling, only when the window is what limits the stream: the
// reader keeps up and the server leaves the channel waiting, half window after half window
// (a long link, see kWindowStall). A reader that does not read keeps its channel at
// kStartWindow. The WindowBudget caps the sum over all channels; the window's reservation
// goes back to it when the ReceiveWindow is destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "forward/window_budget.h"

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
// The largest window a measurement may ask for (TETHER_WINDOW_CEILING_MIB), and the size
// of the scratch buffer a read goes through.
inline constexpr uint32_t kMaxWindow = 128u << 20;
// The ceiling, set by sshd's channel buffer. sshd reads the application's socket into a
// buffer of at most 16 MiB (OpenSSH's CHAN_INPUT_MAX) as far as our window lets it, and
// packs it (memmove) when half is consumed or, forced, when a 32 KiB read would pass that
// maximum. Once the link or sshd's own CPU is the bottleneck, the buffer holds about the
// window: past ~16 MiB every read then forces a memmove of everything it holds, sshd runs at
// 93% CPU, 87% of it in memmove, and one download at 100 ms fell from 1.5-2 Gbit/s to
// 120-320 Mbit/s for good (32 and 128 MiB windows, 60 s runs over one end-to-end TCP
// connection, bench/long_link.py). Under 8 MiB no pack is ever forced, but 8 MiB carries
// at most 670 Mbit/s at 100 ms. 15 MiB leaves the buffer room to pack now and then and
// held 940 Mbit/s at 100 ms (12 MiB: 760, 16 MiB: 990 but at the edge).
inline constexpr uint32_t kWindowCeiling = 15u << 20;
// The window grows only after kStalledHalvesToGrow half-windows in a row in each of
// which the server left the channel waiting for data at least kWindowStall (from an
// empty read to the next data): that is a sender out of window on a long link. A larger
// window is not free: sshd reads up to the window we grant into its channel buffer and
// the bigger that buffer, the more it spends moving and reallocating it. On loopback
// (2 cores) a 16 MiB window cost sshd 20-50% more CPU per byte than 2 MiB (5x in one
// run of ten), and download fell to 0.4-0.9x OpenSSH. Measured waits on loopback: median
// 40-130 us, at most 22 ms with two extra busy processes on the 2 cores; over a 50 ms
// round trip every half window waited 30 ms or more. Links under ~30 ms RTT keep 2 MiB,
// as OpenSSH does.
inline constexpr std::chrono::milliseconds kWindowStall{20};
inline constexpr int kStalledHalvesToGrow = 2;
// The other sign of a window that limits the stream, for links where the sender rarely
// waits long (a 20 ms path carried 662 Mbit/s in a 2 MiB window, OpenSSH 733, with waits
// under kWindowStall): what the channel moved in one round trip of the connection's TCP
// (its smoothed RTT, TCP_INFO) reaches kBdpShareOfWindow of the window, as TCP's receive
// autotuning grows a socket buffer to twice what arrives per RTT. Only from kLongRtt up:
// under load a loopback or LAN connection's RTT says little, and there a larger window
// costs sshd CPU (kWindowStall).
inline constexpr std::chrono::milliseconds kLongRtt{10};
inline constexpr double kBdpShareOfWindow = 0.5;

// What a half window's check learns of the link: the longest wait for data since the last
// check, the connection's TCP round trip (nullopt: cannot tell), and the time.
struct LinkEvidence {
  std::chrono::steady_clock::duration longest_wait{};
  std::optional<std::chrono::microseconds> rtt;
  std::chrono::steady_clock::time_point now{};
};
// The evidence now: `longest_wait` as the channel measured it, the RTT of the connection
// on `link_fd` (-1: none).
LinkEvidence EvidenceNow(std::chrono::steady_clock::duration longest_wait, int link_fd);

// kWindowCeiling, or TETHER_WINDOW_CEILING_MIB (1..128) when set: for measuring the rule.
uint32_t WindowCeiling();

class ReceiveWindow {
 public:
  // Nothing is reserved until Start.
  ReceiveWindow(WindowBudget& budget, std::string log_prefix);
  ~ReceiveWindow();
  ReceiveWindow(const ReceiveWindow&) = delete;
  ReceiveWindow& operator=(const ReceiveWindow&) = delete;

  // The channel opened: reserves what it can of the start window (a loaded daemon runs
  // with less). With the budget spent, a channel still gets kMinWindow (what libssh grants
  // at open anyway), outside the budget: it moves, slowly, and the overshoot is bounded by
  // kMinWindow per channel.
  void Start();
  // The window to keep granted.
  uint32_t size() const { return window_; }
  // After a read from the channel: `drained` bytes taken from it so far, `reader_keeps_up`
  // when the local reader took all of them. `take_evidence` is asked once per half window
  // drained (its longest wait: since it was last asked).
  void AfterRead(uint64_t drained, bool reader_keeps_up,
                 const std::function<LinkEvidence()>& take_evidence);

 private:
  bool Grow(uint32_t extra);

  WindowBudget& budget_;
  std::string log_prefix_;
  uint32_t window_ = 0;    // receive window we keep granted
  uint32_t reserved_ = 0;  // how much of it the budget holds for us
  uint64_t drained_at_check_ = 0;
  std::chrono::steady_clock::time_point checked_at_{};  // of the last half-window check
  int stalled_halves_ = 0;  // half-windows in a row that the window limited
};

}  // namespace tether::forward
