#include "agent/proc.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <map>

#include "common/text.h"

namespace tether::agent {
namespace {

constexpr uint64_t kKibibyte = 1024;
constexpr std::string_view kTcpListen = "0A";  // TCP_LISTEN in include/net/tcp_states.h

Error ProcError(std::string_view file, std::string message) {
  return MakeError(std::string(file), std::move(message));
}

// "0100007F" (one 32-bit word) or 32 hex digits (four words) into an address string.
Result<std::string> DecodeAddress(std::string_view hex, bool ipv6) {
  const size_t words = ipv6 ? 4 : 1;
  if (hex.size() != words * 8) return MakeError("address", "bad length");
  unsigned char bytes[16] = {};
  for (size_t w = 0; w < words; ++w) {
    auto word = ParseHex(hex.substr(w * 8, 8));
    if (!word) return MakeError("address", "not hex");
    // The kernel printed the word as a native integer: copying it back natively gives
    // the network-order bytes it held.
    uint32_t native = static_cast<uint32_t>(*word);
    std::memcpy(bytes + w * 4, &native, sizeof native);
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(ipv6 ? AF_INET6 : AF_INET, bytes, text, sizeof text) == nullptr) {
    return MakeError("address", "cannot format");
  }
  return std::string(text);
}

}  // namespace

Result<LoadAvg> ParseLoadAvg(std::string_view text) {
  auto words = SplitWords(FirstLine(text));
  if (words.size() < 4) return ProcError("loadavg", "expected at least 4 fields");
  LoadAvg load;
  auto l1 = ParseDouble(words[0]);
  auto l5 = ParseDouble(words[1]);
  auto l15 = ParseDouble(words[2]);
  if (!l1 || !l5 || !l15) return ProcError("loadavg", "load averages are not numbers");
  load.load1 = *l1;
  load.load5 = *l5;
  load.load15 = *l15;
  std::string_view sched = words[3];
  size_t slash = sched.find('/');
  if (slash == std::string_view::npos) return ProcError("loadavg", "expected running/total");
  auto running = ParseInt(sched.substr(0, slash));
  auto total = ParseInt(sched.substr(slash + 1));
  if (!running || !total) return ProcError("loadavg", "running/total are not numbers");
  load.running = *running;
  load.total = *total;
  return load;
}

Result<double> ParseUptime(std::string_view text) {
  auto words = SplitWords(FirstLine(text));
  if (words.empty()) return ProcError("uptime", "empty");
  auto up = ParseDouble(words[0]);
  if (!up || *up < 0) return ProcError("uptime", "not a number");
  return *up;
}

Result<MemInfo> ParseMemInfo(std::string_view text) {
  std::map<std::string_view, uint64_t, std::less<>> kib;
  for (std::string_view line : SplitLines(text)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    auto words = SplitWords(line.substr(colon + 1));
    if (words.empty()) continue;
    auto value = ParseUint(words[0]);
    // Every field we read is in kB; a line in another unit (none today) is ignored.
    if (!value || (words.size() > 1 && words[1] != "kB")) continue;
    kib[line.substr(0, colon)] = *value;
  }
  auto get = [&](std::string_view key) -> std::optional<uint64_t> {
    auto it = kib.find(key);
    if (it == kib.end()) return std::nullopt;
    return it->second * kKibibyte;
  };
  auto total = get("MemTotal");
  auto free = get("MemFree");
  if (!total || !free) return ProcError("meminfo", "no MemTotal or MemFree line");
  MemInfo mem;
  mem.total_bytes = *total;
  mem.free_bytes = *free;
  if (auto available = get("MemAvailable")) {
    mem.available_bytes = *available;
  } else {
    mem.available_bytes = *free + get("Buffers").value_or(0) + get("Cached").value_or(0);
  }
  mem.swap_total_bytes = get("SwapTotal").value_or(0);
  mem.swap_free_bytes = get("SwapFree").value_or(0);
  return mem;
}

Result<std::vector<ListeningPort>> ParseProcNetTcp(std::string_view text, bool ipv6) {
  std::string_view file = ipv6 ? "tcp6" : "tcp";
  std::vector<ListeningPort> ports;
  size_t line_no = 0;
  for (std::string_view line : SplitLines(text)) {
    ++line_no;
    auto words = SplitWords(line);
    if (words.empty()) continue;
    if (words[0] == "sl") continue;  // the header row
    // sl local rem st tx:rx tr:when retrnsmt uid ...
    if (words.size() < 8) {
      return ProcError(file, "line " + std::to_string(line_no) + ": too few fields");
    }
    if (words[3] != kTcpListen) continue;
    std::string_view local = words[1];
    size_t colon = local.find(':');
    if (colon == std::string_view::npos) {
      return ProcError(file, "line " + std::to_string(line_no) + ": no port");
    }
    auto address = DecodeAddress(local.substr(0, colon), ipv6);
    auto port = ParseHex(local.substr(colon + 1));
    auto uid = ParseInt(words[7]);
    if (!address || !port || *port > 65535 || !uid) {
      return ProcError(file, "line " + std::to_string(line_no) + ": bad address, port or uid");
    }
    ports.push_back(ListeningPort{ipv6, std::move(*address), static_cast<int>(*port), *uid});
  }
  return ports;
}

Result<int64_t> ParseStatusUid(std::string_view text) {
  for (std::string_view line : SplitLines(text)) {
    if (line.substr(0, 4) != "Uid:") continue;
    auto words = SplitWords(line.substr(4));
    auto uid = words.empty() ? std::nullopt : ParseInt(words[0]);
    if (!uid || *uid < 0) return ProcError("status", "bad Uid line");
    return *uid;
  }
  return ProcError("status", "no Uid line");
}

}  // namespace tether::agent
