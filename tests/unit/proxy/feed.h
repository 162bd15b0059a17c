// Helpers shared by the proxy parser tests: feed a message one byte at a time, as the
// slowest client would, and check the tri-state promise at every length.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "proxy/parse_result.h"

namespace tether::proxy {

// Every proper prefix of `message` must be need-more; returns the parse of the whole.
template <typename Parser>
auto FeedBytewise(Parser parse, std::string_view message) {
  for (size_t n = 0; n < message.size(); ++n) {
    auto partial = parse(message.substr(0, n));
    EXPECT_TRUE(partial.need_more()) << "after " << n << " of " << message.size() << " bytes";
  }
  return parse(message);
}

// The parse of `message` followed by bytes of the next message must consume exactly
// `message`, and give the same value.
template <typename Parser>
auto FeedWithTrailer(Parser parse, std::string_view message, std::string_view trailer) {
  const std::string both = std::string(message) + std::string(trailer);
  auto result = parse(std::string_view(both));
  if (result.done()) {
    EXPECT_EQ(result.consumed(), message.size());
  }
  return result;
}

// A refused message: need-more for every prefix shorter than `refused_at` bytes, refused
// from there on up to the whole, always with the same code and reply.
template <typename Parser>
void ExpectRefusedFrom(Parser parse, std::string_view message, size_t refused_at, int code,
                       std::string_view reply, std::string_view reason_part) {
  ASSERT_LE(refused_at, message.size());
  for (size_t n = 0; n < refused_at; ++n) {
    auto partial = parse(message.substr(0, n));
    EXPECT_TRUE(partial.need_more()) << "after " << n << " bytes, expected need-more";
  }
  for (size_t n = refused_at; n <= message.size(); ++n) {
    auto got = parse(message.substr(0, n));
    ASSERT_TRUE(got.refused()) << "after " << n << " bytes, expected refused";
    EXPECT_EQ(got.refusal().code, code);
    EXPECT_EQ(got.refusal().reply, reply);
    EXPECT_NE(got.refusal().reason.find(reason_part), std::string::npos)
        << "reason: " << got.refusal().reason;
  }
}

// Bytes from a list of numbers, for messages that are mostly binary.
inline std::string Bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

}  // namespace tether::proxy
