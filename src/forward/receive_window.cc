#include "forward/receive_window.h"

#include <algorithm>
#include <cstdlib>

#include "common/log.h"

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

void ReceiveWindow::AfterRead(
    uint64_t drained, bool reader_keeps_up,
    const std::function<std::chrono::steady_clock::duration()>& take_stall) {
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
  // the server also kept us waiting, half-window after half-window (see kWindowStall):
  // then double it while the budget allows.
  if (drained - drained_at_check_ < window_ / 2) return;
  drained_at_check_ = drained;
  auto stall = take_stall();
  stalled_halves_ = stall >= kWindowStall ? stalled_halves_ + 1 : 0;
  const uint32_t ceiling = WindowCeiling();
  if (stalled_halves_ < kStalledHalvesToGrow || window_ >= ceiling) return;
  stalled_halves_ = 0;
  if (Grow(std::min(window_, ceiling - window_))) {
    spdlog::debug("[{}] receive window {} KiB (waited {} ms for data)", log_prefix_, window_ >> 10,
                  std::chrono::duration_cast<std::chrono::milliseconds>(stall).count());
  }
}

bool ReceiveWindow::Grow(uint32_t extra) {
  if (!budget_.TryReserve(extra)) return false;
  window_ += extra;
  reserved_ += extra;
  return true;
}

}  // namespace tether::forward
