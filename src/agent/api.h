// The agent's HTTP API: paths, JSON encodings and request parsing, apart from any
// server so tests can check the wire format by value. docs/agent.md shows the shapes.
//
// Units are in the names: *_bytes, *_seconds, *_percent, *_celsius, *_watts. A value the
// machine cannot give (a GPU in MIG mode has no utilization) is null, never 0.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "agent/lease.h"
#include "agent/status.h"
#include "common/result.h"

namespace tether::agent {

// Keys keep the order they are written in, so the JSON reads top-down like the document.
using Json = nlohmann::ordered_json;

// Bumped when a field changes meaning or goes away; new fields do not bump it.
inline constexpr int kApiVersion = 1;

inline constexpr std::string_view kStatusPath = "/status";
inline constexpr std::string_view kMetricsPath = "/metrics";
inline constexpr std::string_view kLeasePath = "/lease";
inline constexpr std::string_view kExtendPath = "/extend";

inline constexpr std::string_view kJsonContentType = "application/json";

Json StatusToJson(const SystemStatus& status, std::string_view agent_version);
Json LeaseToJson(const LeaseSnapshot& lease);
// {"error": message, "hint": hint} (hint only when there is one).
Json ErrorJson(std::string_view message, std::string_view hint = {});

// Serializes with invalid UTF-8 (a process or session name can hold any bytes) replaced
// by U+FFFD instead of throwing.
std::string DumpJson(const Json& j);

// POST /extend: hours from the query (?hours=2) or, when the query has none, from a JSON
// body {"hours": 2}. Fractions are fine (0.5); the value must be positive and finite.
Result<std::chrono::milliseconds> ParseExtendRequest(std::optional<std::string_view> query_hours,
                                                     std::string_view body);

}  // namespace tether::agent
