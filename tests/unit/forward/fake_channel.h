// A channel with no SSH behind it, for the pump's tests: the test plays the server through
// a FakeChannel::Server it keeps (the pump owns the channel and may destroy it first).
// Reads give what the server sent, no more than the window the pump grants; writes take
// no more than the remote window the server opened. Stalls are whatever the test says,
// so window growth is tested without a clock. Loop thread only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ssh/channel.h"

namespace tether::forward {

class FakeChannel : public ssh::ChannelIo {
 public:
  struct Server {
    // What the channel's open comes to.
    OpenState open = OpenState::kOpen;
    std::string open_error;
    // Sent by the server, not yet read by the pump.
    std::string to_pump;
    bool eof = false;     // the server sent EOF (after to_pump)
    bool closed = false;  // the server closed the channel
    // Taken from the pump.
    std::string from_pump;
    bool eof_received = false;
    // What the pump may send now (less what it sent).
    uint32_t remote_window = 1u << 20;
    // Write takes nothing (a key re-exchange), or fails (a broken channel).
    bool writes_wait = false;
    bool writes_fail = false;
    bool eof_fails = false;
    // The wait TakeLongestStall reports each time it is called.
    std::chrono::steady_clock::duration stall{};
    // What the pump asked for.
    uint32_t window = 0;  // the window granted on the last Read
    int reads = 0;
    int stall_takes = 0;
    bool destroyed = false;
    ssh::ChannelObserver* observer = nullptr;  // wakes the pump (through a PumpSet)
  };

  explicit FakeChannel(std::shared_ptr<Server> server, ssh::ChannelObserver* observer = nullptr)
      : server_(std::move(server)) {
    server_->observer = observer;
  }
  ~FakeChannel() override {
    server_->destroyed = true;
    server_->observer = nullptr;
  }

  OpenState PollOpen() override { return server_->open; }
  const std::string& error() const override { return server_->open_error; }

  ReadResult Read(char* buf, size_t cap, uint32_t window) override {
    ++server_->reads;
    server_->window = window;
    ReadResult r;
    if (server_->open != OpenState::kOpen) {
      r.closed = true;
      return r;
    }
    // A server sends no more than the window: so much is all libssh can have buffered.
    size_t n = std::min({cap, server_->to_pump.size(), size_t{window}});
    if (n > 0) {
      server_->to_pump.copy(buf, n);
      server_->to_pump.erase(0, n);
      r.bytes = n;
      return r;
    }
    if (!server_->to_pump.empty()) return r;
    r.eof = server_->eof;
    r.closed = server_->closed && !r.eof;
    return r;
  }

  std::chrono::steady_clock::duration TakeLongestStall() override {
    ++server_->stall_takes;
    return server_->stall;
  }

  Result<size_t> Write(const char* data, size_t len) override {
    if (!IsOpen() || server_->writes_fail) return MakeError("channel", "channel is closed");
    if (server_->writes_wait) return size_t{0};
    size_t n = std::min<size_t>(len, server_->remote_window);
    server_->from_pump.append(data, n);
    server_->remote_window -= static_cast<uint32_t>(n);
    return n;
  }

  uint32_t RemoteWindow() const override {
    return server_->open == OpenState::kOpen ? server_->remote_window : 0;
  }

  Status SendEof() override {
    if (server_->eof_fails) return MakeError("channel", "cannot send EOF");
    server_->eof_received = true;
    return Status::Ok();
  }

  bool IsOpen() const override { return server_->open == OpenState::kOpen && !server_->closed; }

 private:
  std::shared_ptr<Server> server_;
};

}  // namespace tether::forward
