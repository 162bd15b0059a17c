// Result<T>: a value or an Error, returned by every call that can fail.
// Errors cross the event loop as values; exceptions are reserved for main()'s last resort.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace tether {

// The kinds of failure that policy tells apart: a reconnect that failed on the network
// probes the path, one that needs the human waits for `tether up`, a lane that cannot
// log in turns lanes off. Everything else is kOther, and its `step` says what failed.
enum class ErrorCode {
  kOther,
  kResolve,     // the host name did not resolve
  kConnect,     // no connection to the server (refused, unreachable, timed out)
  kHandshake,   // the SSH key exchange failed
  kHostKey,     // the server's host key is unknown, changed or not accepted
  kAuth,        // authentication failed
  kNeedsLogin,  // the server wants what only a person can give (a password, a code, a
                // key's passphrase) and nobody could be asked
  kListen,      // a listener could not be made (port taken, no permission)
  kPolicy,      // a target the configuration does not allow (the laptop's own network)
};

// The step an error of `code` names: "resolve", "connect", "handshake", "host key", "auth"
// (kAuth and kNeedsLogin), "listen", "policy"; "" for kOther.
const char* StepOf(ErrorCode code);

// What failed, in words a user can act on. `step` names the phase (resolve, connect,
// host key, auth, forward, ...); `hint` says what to do; `sys_errno` keeps errno when a
// system call failed (0 otherwise); `code` is what policy decides on (never the text).
struct Error {
  std::string step;
  std::string message;
  std::string hint;
  int sys_errno = 0;
  ErrorCode code = ErrorCode::kOther;

  // "step: message" and, when there is one, "\n  hint".
  std::string ToString() const;
};

// An error of a kind policy tells apart: its step is StepOf(code).
Error MakeError(ErrorCode code, std::string message, std::string hint = {}, int sys_errno = 0);
// Any other error (code kOther), its step in words.
Error MakeError(std::string step, std::string message, std::string hint = {}, int sys_errno = 0);
// An error for a failed system call: the message gets ": strerror(errno)" appended.
Error ErrnoError(ErrorCode code, std::string message, int sys_errno);
Error ErrnoError(std::string step, std::string message, int sys_errno);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& take_error() {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success carries nothing.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  static Status Ok() { return {}; }

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }
  Error&& take_error() {
    assert(!ok_);
    return std::move(error_);
  }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace tether
