// Small text helpers for parsers of what other programs print (the agent's, the server's
// socket table): lines, fields, numbers. Pure; no locale (std::from_chars), so "0.5" reads
// the same under any LANG a server was set up with.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether {

// Splits on '\n', dropping a trailing '\r' from each line and the empty piece after a
// final newline.
std::vector<std::string_view> SplitLines(std::string_view text);
// Splits on runs of spaces and tabs; no empty fields.
std::vector<std::string_view> SplitWords(std::string_view text);
std::string_view Trim(std::string_view s);
// An HTTP token (RFC 9110 section 5.6.2: methods, header names): one or more of
// letters, digits and !#$%&'*+-.^_`|~.
bool IsHttpToken(std::string_view s);
// The first non-blank line, trimmed; empty when there is none.
std::string_view FirstLine(std::string_view text);

// Whole-string numbers: no sign on unsigned, no trailing garbage, no whitespace.
std::optional<int64_t> ParseInt(std::string_view s);
std::optional<uint64_t> ParseUint(std::string_view s);
std::optional<uint64_t> ParseHex(std::string_view s);
// Finite decimal numbers only ("nan" and "inf" are refused).
std::optional<double> ParseDouble(std::string_view s);

// "2024-05-01T12:00:00Z" (RFC 3339, UTC, whole seconds).
std::string FormatUtc(std::chrono::system_clock::time_point t);

// Valid UTF-8 as is; each byte of an invalid sequence becomes U+FFFD.
std::string SanitizeUtf8(std::string_view s);

// Printable ASCII as is; other bytes as \xNN. At most `max_bytes` of input, then "...".
// For log lines built from what a client sent.
std::string EscapeForLog(std::string_view s, size_t max_bytes);

// One account of a passwd file or of `getent passwd`'s answer
// (name:password:uid:gid:gecos:dir:shell).
struct PasswdEntry {
  std::string name;
  std::string home;  // empty when the line has none
};
// The first line for `uid` whose name is a word (1 to 64 printable bytes, no space):
// garbage lines and other uids (a gid is not a uid, 1001 is not 10010) are passed over.
std::optional<PasswdEntry> FindPasswdEntry(std::string_view lines, uint64_t uid);

}  // namespace tether
