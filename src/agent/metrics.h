// GET /metrics: the status snapshot in the Prometheus text exposition format 0.0.4, so a
// Prometheus or a node-exporter-style scraper can read the agent through the tunnel.
//
//   # HELP tether_gpu_utilization_percent GPU busy time over the last sample period.
//   # TYPE tether_gpu_utilization_percent gauge
//   tether_gpu_utilization_percent{gpu="0",uuid="GPU-5c7d..."} 98
//
// Each family is written once with its HELP and TYPE lines before its samples; a value
// the machine cannot give is left out (the Prometheus convention), not written as 0.
#pragma once

#include <string>
#include <string_view>

#include "agent/status.h"

namespace tether::agent {

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string RenderMetrics(const SystemStatus& status, std::string_view agent_version);

// A label value with backslash, double quote and newline escaped, and invalid UTF-8
// replaced: the three escapes the format defines.
std::string EscapeLabelValue(std::string_view value);
// Integers without a fraction ("81920"), others in shortest round-trip form ("61.52"),
// and "NaN", "+Inf", "-Inf" as the format spells them.
std::string FormatSampleValue(double value);

}  // namespace tether::agent
