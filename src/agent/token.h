// The agent's bearer token: 256 bits from the kernel's CSPRNG (getrandom), kept as 64 lowercase hex
// digits in a 0600 file (default ~/.config/tether/agent-token, its directory made 0700).
// Whoever can read that file can use the agent, which is the point: the installer reads
// it over SSH as the same user (`tether-agent --print-token`).
//
// Secrets rule: the token is never logged and never put in an error message.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace tether::agent {

inline constexpr size_t kTokenBytes = 32;  // 256 bits: beyond guessing, online or offline
inline constexpr size_t kTokenHexChars = 2 * kTokenBytes;

// ~/.config/tether/agent-token ($HOME, else the password database).
std::string DefaultTokenPath();

// 64 hex digits of fresh randomness.
Result<std::string> GenerateToken();

// Reads the token at `path`, creating it (and missing parent directories, 0700) when
// there is none. Creation is atomic: the token is written to a private temporary file and
// linked into place, so two agents starting at once agree on one token and a reader never
// sees half a file. Refuses a token file that others may read or that is not a token,
// rather than overwriting something the user made.
Result<std::string> LoadOrCreateToken(const std::string& path);

// True when `presented` is the token. Constant time in the token's content;
// only the length, which is public, decides early.
bool TokenMatches(std::string_view token, std::string_view presented);

// The credentials of an "Authorization: Bearer <credentials>" header value; the scheme is
// case-insensitive (RFC 9110 section 11.1). Empty when the header is not a bearer one.
std::string_view BearerCredentials(std::string_view authorization);

}  // namespace tether::agent
