// A direct-tcpip (or direct-streamlocal) channel used by a forward, in non-blocking mode.
// Only the event-loop thread that owns the session may call it.
//
// Reading uses libssh's public API so the receive window can grow past its fixed
// 1.28 MB (DESIGN.md): ssh_channel_read_timeout(..., count, ..., 0) raises the window
// to `count` minus what is buffered. There is no data callback that consumes data;
// the callbacks registered here only say "something happened on this channel".
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "ssh/window_grant.h"

namespace tether::ssh {

// Told when a channel has news: data, EOF, close, or a larger remote window. Called
// from inside libssh (while any channel of the session is being read or polled):
// it must only take note, never touch the channel or free anything.
class ChannelObserver {
 public:
  virtual ~ChannelObserver() = default;
  virtual void OnChannelActivity() = 0;
};

// What a pump (forward/pump.h) does with a channel, so that its tests can drive it with a
// fake one. Closing is the owner's: destroying the object closes the channel. The
// implementation wakes its pump through a ChannelObserver it was given when it was made.
// Only the thread that owns the channel may call it.
class ChannelIo {
 public:
  enum class OpenState { kPending, kOpen, kFailed };
  struct ReadResult {
    size_t bytes = 0;
    bool eof = false;     // the peer sent EOF and nothing is left to read
    bool closed = false;  // the channel is closed or broken: stop using it
  };

  virtual ~ChannelIo() = default;

  // Advances the open; call again while kPending. On kFailed, error() says why.
  virtual OpenState PollOpen() = 0;
  virtual const std::string& error() const = 0;
  // Reads what is buffered into `buf` (at most `cap` bytes), granting the peer a receive
  // window of `window` bytes in all (as it sees fit to send adjustments).
  virtual ReadResult Read(char* buf, size_t cap, uint32_t window) = 0;
  // The longest time the peer left us waiting for data since the last call. Resets it.
  virtual std::chrono::steady_clock::duration TakeLongestStall() = 0;
  // The socket of the connection the channel runs on, for its TCP round trip; -1: none.
  virtual int LinkFd() const { return -1; }
  // Writes up to `len` bytes, no more than the remote window allows. Returns the count
  // taken (0: try later); an error when the channel is broken.
  virtual Result<size_t> Write(const char* data, size_t len) = 0;
  // What the peer lets us send now; 0 while the channel is not open.
  virtual uint32_t RemoteWindow() const = 0;
  virtual Status SendEof() = 0;
  virtual bool IsOpen() const = 0;
};

class Channel final : public ChannelIo {
 public:
  // Starts opening a channel to `host`:`port` (or to the unix socket `path` when set)
  // on the server. `observer` must outlive the channel.
  Channel(ssh_session session, std::string host, uint16_t port, std::string path,
          std::string origin_host, uint16_t origin_port, ChannelObserver* observer);
  // Takes a channel the server opened and we accepted (a remote forward's connection).
  Channel(ssh_session session, ssh_channel accepted, ChannelObserver* observer);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Advances the open; call again while kPending. On kFailed, error() says why.
  OpenState PollOpen() override;
  const std::string& error() const override { return error_; }

  // Reads what is buffered into `buf` (at most `cap` bytes). `window` is the receive
  // window to keep granted; it is re-granted once a quarter of it has been consumed, so
  // window adjustments do not go out for every small read.
  ReadResult Read(char* buf, size_t cap, uint32_t window) override;
  // Bytes libssh has buffered for us, as last reported by its callbacks.
  size_t buffered() const { return buffered_; }
  // The longest time the server left us waiting since the last call: from a Read that
  // found nothing to the arrival of the next data (as libssh decrypts it, so our own
  // processing is not counted). Resets it.
  std::chrono::steady_clock::duration TakeLongestStall() override;
  int LinkFd() const override;

  // Writes up to `len` bytes, no more than the remote window allows. Returns the count
  // taken (0: window closed or a key re-exchange in progress, try later); an error
  // when the channel is broken.
  Result<size_t> Write(const char* data, size_t len) override;
  uint32_t RemoteWindow() const override;

  Status SendEof() override;
  bool IsOpen() const override;

 private:
  static int OnData(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                    void* userdata);
  static void OnEof(ssh_session, ssh_channel, void* userdata);
  static void OnClose(ssh_session, ssh_channel, void* userdata);
  static int OnWindow(ssh_session, ssh_channel, uint32_t bytes, void* userdata);
  void InstallCallbacks();

  ssh_session session_;
  ssh_channel channel_;
  std::string host_;
  uint16_t port_ = 0;
  std::string path_;
  std::string origin_host_;
  uint16_t origin_port_ = 0;
  ChannelObserver* observer_;
  ssh_channel_callbacks_struct callbacks_{};
  OpenState state_ = OpenState::kPending;
  std::string error_;
  size_t buffered_ = 0;
  StallMeter stall_;
  WindowGrant grant_;
};

}  // namespace tether::ssh
