// The servers' GPUs as their agents report them (GET /status, docs/agent.md), for
// `tether gpus` and `tether status --remote`: the cells both tables share, which GPU counts
// as free, the process that holds most of a GPU, and `tether gpus`'s table and JSON.
// Pure: the answers are fetched elsewhere (cli/agent.h).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace tether::cli {

// A GPU is free when no compute process runs on it, its utilization is known and below
// kFreeUtilizationPercent, and its memory used is known and below kFreeMemoryFraction of its
// total. An idle GPU reads 0-2 % and a few hundred MiB (the driver's own context); a job
// that has loaded a model holds gigabytes. A figure the GPU cannot give (MIG mode) is no
// evidence that it is free.
inline constexpr double kFreeUtilizationPercent = 10;
inline constexpr double kFreeMemoryFraction = 0.05;

bool GpuIsFree(const nlohmann::json& gpu);
// The process using most of the GPU's memory (the first when none says how much), or null.
nlohmann::json TopGpuProcess(const nlohmann::json& gpu);
// "python3 (ana)", "vllm (uid 54321) +2", "-": the top process's command name (without
// its directory) and user, and how many more there are.
std::string TopProcessCell(const nlohmann::json& gpu);
// An integer figure with its unit, "-" when absent: "97%", "64 C".
std::string GpuNumberCell(const nlohmann::json& value, const std::string& unit = "");
// HOST, GPU, NAME, UTIL, MEMORY, TEMP: the leading cells of both tables.
std::vector<std::string> GpuCells(const std::string& host, const nlohmann::json& gpu);

// One host's entry of `tether gpus --json` (docs/agent.md): its agent's GPUs, each with
// "free" and "top_process" added (only the free ones with `only_free`), or why there are
// none. `status` is the agent's /status or the error of asking it.
nlohmann::json GpusEntry(const std::string& host, const Result<nlohmann::json>& status,
                         bool only_free);
// An entry for a host that was not asked: its link is not up.
nlohmann::json GpusEntryNotUp(const std::string& host, const std::string& state);
// Whether the host's agent answered.
bool GpusEntryAnswered(const nlohmann::json& entry);
// The table over every entry's GPUs, then one line per host that has something to say
// (no agent and what to run, no GPUs, nvidia-smi's error).
std::string FormatGpus(const nlohmann::json& entries, bool only_free);

}  // namespace tether::cli
