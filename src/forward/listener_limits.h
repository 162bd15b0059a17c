// How much one listener (-L, -D, -R, the server proxy) may hold at once, so that a flood
// of connections, or a few clients that connect and say nothing, cost the daemon a bounded
// number of descriptors and bytes and cannot take what the other forwards need. What is
// over a cap is refused at once: with the proxy protocol's own answer where there is one
// (SOCKS5 general failure, SOCKS4 rejected, HTTP 503), else by closing the connection
// (-L) or the channel (-R). Refusals are counted per forward (ForwardStats::refused_*).
#pragma once

#include <chrono>
#include <cstddef>

namespace tether::forward {

// Connections one listener holds open: served, waiting for the link, in a proxy
// handshake, or waiting for the owner check. Four times the thousand stalled streams
// tests/e2e/memory_test.cc keeps on one port, far past what a person's tools open (a
// browser keeps a few dozen per proxy); at about three descriptors a server-proxy
// connection it is 12k, inside the hard descriptor limit the daemon raises itself to on
// common systems, so one listener cannot take every descriptor.
inline constexpr size_t kMaxConnections = 4096;
// Proxy handshakes (SOCKS, HTTP CONNECT) in progress: a client names its target in one or
// two round trips, so even a browser opening a page's connections at once has a handful
// in progress; 64 are there only when someone holds them open. As many again may wait for
// the owner check (forward/owner_check.h) of the server proxy and reverse SOCKS: it
// answers one question at a time, so a queue of a flood's hundreds would keep the owner's
// own connection waiting seconds behind them; past the cap they are closed at once.
inline constexpr size_t kMaxHandshakes = 64;
// A client that has not named its target by then is dropped (a port scanner, a stuck
// client); real clients take milliseconds, and 10 s leaves room for a person pasting a
// request into `nc`.
inline constexpr std::chrono::seconds kHandshakeTimeout{10};
// Connections over a cap that are being told so (their request read, the refusal written):
// as many again as kMaxHandshakes, each for at most kBusyTimeout. Past that they are
// closed without an answer.
inline constexpr size_t kMaxBusy = 64;
inline constexpr std::chrono::seconds kBusyTimeout{2};

struct ListenerLimits {
  size_t max_connections = kMaxConnections;
  size_t max_handshakes = kMaxHandshakes;
  std::chrono::milliseconds handshake_timeout = kHandshakeTimeout;
  size_t max_busy = kMaxBusy;
  std::chrono::milliseconds busy_timeout = kBusyTimeout;
};

}  // namespace tether::forward
