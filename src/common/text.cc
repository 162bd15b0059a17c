#include "common/text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace tether {

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::vector<std::string_view> SplitWords(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

std::string_view Trim(std::string_view s) {
  constexpr std::string_view kBlank = " \t\r\n";
  size_t start = s.find_first_not_of(kBlank);
  if (start == std::string_view::npos) return {};
  size_t end = s.find_last_not_of(kBlank);
  return s.substr(start, end - start + 1);
}

std::string_view FirstLine(std::string_view text) {
  for (std::string_view line : SplitLines(text)) {
    std::string_view trimmed = Trim(line);
    if (!trimmed.empty()) return trimmed;
  }
  return {};
}

namespace {

template <typename T>
std::optional<T> ParseWhole(std::string_view s, int base) {
  T value{};
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<int64_t> ParseInt(std::string_view s) { return ParseWhole<int64_t>(s, 10); }

std::optional<uint64_t> ParseUint(std::string_view s) { return ParseWhole<uint64_t>(s, 10); }

std::optional<uint64_t> ParseHex(std::string_view s) { return ParseWhole<uint64_t>(s, 16); }

std::optional<double> ParseDouble(std::string_view s) {
  double value = 0;
  if (s.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::string FormatUtc(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string SanitizeUtf8(std::string_view s) {
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      len = 1;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      min = 0x10000;
    }
    bool ok = len > 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? c : (c & (0x7F >> len));
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8 either.
    ok = ok && cp >= min && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.append(kReplacement);
      ++i;
    }
  }
  return out;
}

std::string EscapeForLog(std::string_view s, size_t max_bytes) {
  std::string out;
  bool truncated = s.size() > max_bytes;
  if (truncated) s = s.substr(0, max_bytes);
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (truncated) out += "...";
  return out;
}

bool IsHttpToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

std::optional<PasswdEntry> FindPasswdEntry(std::string_view lines, uint64_t uid) {
  constexpr size_t kMaxName = 64;
  for (std::string_view line : SplitLines(lines)) {
    std::vector<std::string_view> fields;
    // Bounded: seven fields at most, each found past the last.
    for (size_t start = 0; fields.size() < 7;) {
      const size_t colon = line.find(':', start);
      fields.push_back(line.substr(start, colon == std::string_view::npos ? colon : colon - start));
      if (colon == std::string_view::npos) break;
      start = colon + 1;
    }
    if (fields.size() < 3 || ParseUint(fields[2]) != uid) continue;
    const std::string_view name = fields[0];
    const bool word = !name.empty() && name.size() <= kMaxName &&
                      std::all_of(name.begin(), name.end(), [](char c) {
                        return static_cast<unsigned char>(c) > ' ' && c != 0x7f;
                      });
    if (!word) continue;
    return PasswdEntry{std::string(name), fields.size() > 5 ? std::string(fields[5]) : ""};
  }
  return std::nullopt;
}

}  // namespace tether
