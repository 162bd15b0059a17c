// ParseResult<T>: the tri-state answer of every proxy parser.
//
// A parser is given everything buffered so far (not yet consumed) and answers
//   need-more  the bytes are a valid prefix of a message; read more and call again with all
//              of them (nothing is consumed; the parser keeps no state between calls),
//   done       the first consumed() bytes are one whole message, value() is what it says;
//              the caller drops those bytes and keeps the rest for the next step,
//   refused    the bytes cannot become a valid message: refusal() says why (for the log),
//              with the protocol's code and the reply to write before closing.
// "Would block" is need-more, never an error.
#pragma once

#include <cassert>
#include <cstddef>
#include <string>
#include <utility>
#include <variant>

namespace tether::proxy {

// Why a request was refused, and what to answer.
struct Refusal {
  // For the log, naming the reason: "SOCKS5 request: unknown address type 0x09". Bytes the
  // client sent are quoted through Printable() (target.h), so the text is safe to log.
  std::string reason;
  // The protocol's code: a SOCKS5 REP or method byte, a SOCKS4 CD byte, an RFC 1929 status
  // or an HTTP status. 0 when nothing is answered.
  int code = 0;
  // The bytes to write before closing; empty when the protocol has no answer (a SOCKS5
  // greeting with the wrong version: the client would not understand one).
  std::string reply;
};

enum class ParseState { kNeedMore, kDone, kRefused };

template <typename T>
class [[nodiscard]] ParseResult {
 public:
  static ParseResult NeedMore() { return ParseResult(std::monostate{}); }
  static ParseResult Done(size_t consumed, T value) {
    return ParseResult(Whole{consumed, std::move(value)});
  }
  static ParseResult Refused(Refusal refusal) { return ParseResult(std::move(refusal)); }

  ParseState state() const { return static_cast<ParseState>(v_.index()); }
  bool need_more() const { return state() == ParseState::kNeedMore; }
  bool done() const { return state() == ParseState::kDone; }
  bool refused() const { return state() == ParseState::kRefused; }

  // Only when done(): the length of the message at the front of the input.
  size_t consumed() const {
    assert(done());
    return std::get<1>(v_).consumed;
  }
  T& value() & {
    assert(done());
    return std::get<1>(v_).value;
  }
  const T& value() const& {
    assert(done());
    return std::get<1>(v_).value;
  }
  T&& value() && {
    assert(done());
    return std::get<1>(std::move(v_)).value;
  }
  const Refusal& refusal() const {
    assert(refused());
    return std::get<2>(v_);
  }

 private:
  struct Whole {
    size_t consumed;
    T value;
  };
  template <typename V>
  explicit ParseResult(V v) : v_(std::move(v)) {}

  // The order matches ParseState.
  std::variant<std::monostate, Whole, Refusal> v_;
};

}  // namespace tether::proxy
