#include "forward/receive_window.h"

#include <algorithm>
#include <cstdlib>

#include "common/log.h"
#include "net/socket.h"

namespace tether::forward {

uint32_t WindowCeiling() {
  static const uint32_t ceiling = [] {
    const char* mib = std::getenv("TETHER_WINDOW_CEILING_MIB");
    const long n = mib != nullptr ? std::strtol(mib, nullptr, 10) : 0;
    if (n < 1 || n > static_cast<long>(kMaxWindow >> 20)) return kWindowCeiling;
    return static_cast<uint32_t>(n) << 20;
  }();
  return ceiling;
}

ReceiveWindow::ReceiveWindow(WindowBudget& budget, std::string log_prefix)
    : budget_(budget), log_prefix_(std::move(log_prefix)) {}

ReceiveWindow::~ReceiveWindow() { budget_.Release(reserved_); }

void ReceiveWindow::Start() {
  if (window_ != 0) return;
  uint32_t want = kStartWindow;
  while (want > kMinWindow && !budget_.TryReserve(want)) want /= 2;
  if (want > kMinWindow || budget_.TryReserve(want)) reserved_ = want;
  window_ = want;
}

void ReceiveWindow::AfterRead(uint64_t drained, bool reader_keeps_up,
                              const std::function<LinkEvidence()>& take_evidence) {
  // Only while the local reader keeps up: one that lags gets no more window.
  if (!reader_keeps_up || window_ == 0) return;
  if (window_ < kInitialWindow) {
    // Start-up: double for every window drained, up to kInitialWindow.
    if (drained - drained_at_check_ < window_) return;
    drained_at_check_ = drained;
    (void)Grow(std::min(window_, kInitialWindow - window_));
    return;
  }
  // Checked once per half-window drained. The stream is limited by the window only if
  // the server also kept us waiting (see kWindowStall), or moved about a window per round
  // trip of a long link (kBdpShareOfWindow), half-window after half-window: then double
  // it while the budget allows.
  const uint64_t moved = drained - drained_at_check_;
  if (moved < window_ / 2) return;
  drained_at_check_ = drained;
  const LinkEvidence evidence = take_evidence();
  const auto since = evidence.now - checked_at_;
  const bool first = checked_at_ == std::chrono::steady_clock::time_point{};
  checked_at_ = evidence.now;
  bool per_rtt = false;
  if (!first && evidence.rtt && *evidence.rtt >= kLongRtt && since.count() > 0) {
    // Bytes moved in one round trip at this half window's rate.
    const double in_rtt = static_cast<double>(moved) *
                          std::chrono::duration<double>(*evidence.rtt).count() /
                          std::chrono::duration<double>(since).count();
    per_rtt = in_rtt >= kBdpShareOfWindow * window_;
  }
  const bool waited = evidence.longest_wait >= kWindowStall;
  stalled_halves_ = waited || per_rtt ? stalled_halves_ + 1 : 0;
  const uint32_t ceiling = WindowCeiling();
  if (stalled_halves_ < kStalledHalvesToGrow || window_ >= ceiling) return;
  stalled_halves_ = 0;
  if (Grow(std::min(window_, ceiling - window_))) {
    spdlog::debug(
        "[{}] receive window {} KiB (waited {} ms for data; RTT {} ms)", log_prefix_, window_ >> 10,
        std::chrono::duration_cast<std::chrono::milliseconds>(evidence.longest_wait).count(),
        evidence.rtt ? evidence.rtt->count() / 1000 : -1);
  }
}

LinkEvidence EvidenceNow(std::chrono::steady_clock::duration longest_wait, int link_fd) {
  return LinkEvidence{longest_wait, net::TcpRtt(link_fd), std::chrono::steady_clock::now()};
}

bool ReceiveWindow::Grow(uint32_t extra) {
  if (!budget_.TryReserve(extra)) return false;
  window_ += extra;
  reserved_ += extra;
  return true;
}

}  // namespace tether::forward
