#include "cli/gpu_table.h"

#include "cli/format.h"

namespace tether::cli {
namespace {

using nlohmann::json;

// The field, or null when it is absent (an older agent, a section that failed).
const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

const json& Processes(const json& gpu) {
  static const json kNone = json::array();
  const json& p = Field(gpu, "processes");
  return p.is_array() ? p : kNone;
}

std::string Text(const json& object, const char* key) {
  const json& v = Field(object, key);
  return v.is_string() ? v.get<std::string>() : "";
}

// "/home/ana/envs/llm/bin/python" -> "python": the command, not where it lives.
std::string CommandName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos || slash + 1 == path.size() ? path : path.substr(slash + 1);
}

// Why a host whose agent answered shows no GPUs, or what its agent could not read.
std::string GpuStateNote(const json& entry) {
  const std::string state = Text(entry, "gpu_state");
  const std::string error = Text(entry, "error");
  if (state == "absent") return "no nvidia-smi on the server (no NVIDIA GPUs there)";
  if (state == "no_devices") return "nvidia-smi sees no GPU";
  if (state == "error") return "nvidia-smi failed" + (error.empty() ? "" : ": " + error);
  return error;
}

}  // namespace

bool GpuIsFree(const json& gpu) {
  if (!Processes(gpu).empty()) return false;
  const json& util = Field(gpu, "utilization_percent");
  if (!util.is_number() || util.get<double>() >= kFreeUtilizationPercent) return false;
  const json& used = Field(gpu, "memory_used_bytes");
  const json& total = Field(gpu, "memory_total_bytes");
  if (!used.is_number() || !total.is_number() || total.get<double>() <= 0) return false;
  return used.get<double>() < kFreeMemoryFraction * total.get<double>();
}

json TopGpuProcess(const json& gpu) {
  const json* top = nullptr;
  double top_bytes = -1;
  for (const json& p : Processes(gpu)) {
    const json& used = Field(p, "used_memory_bytes");
    double bytes = used.is_number() ? used.get<double>() : -1;
    if (top == nullptr || bytes > top_bytes) {
      top = &p;
      top_bytes = bytes;
    }
  }
  return top != nullptr ? *top : json();
}

std::string TopProcessCell(const json& gpu) {
  json top = TopGpuProcess(gpu);
  if (top.is_null()) return "-";
  std::string cell = CommandName(Text(top, "name"));
  if (cell.empty()) cell = "pid " + GpuNumberCell(Field(top, "pid"));
  const std::string user = Text(top, "user");
  const json& uid = Field(top, "uid");
  if (!user.empty()) {
    cell += " (" + user + ")";
  } else if (uid.is_number_integer()) {
    cell += " (uid " + std::to_string(uid.get<int64_t>()) + ")";
  }
  const size_t more = Processes(gpu).size() - 1;
  if (more > 0) cell += " +" + std::to_string(more);
  return cell;
}

std::string GpuNumberCell(const json& v, const std::string& unit) {
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>()) + unit;
  if (v.is_number()) return std::to_string(static_cast<int64_t>(v.get<double>() + 0.5)) + unit;
  return "-";
}

std::vector<std::string> GpuCells(const std::string& host, const json& gpu) {
  std::string mem = "-";
  const json& used = Field(gpu, "memory_used_bytes");
  const json& total = Field(gpu, "memory_total_bytes");
  if (used.is_number() && total.is_number()) {
    mem = HumanBytes(used.get<uint64_t>()) + " / " + HumanBytes(total.get<uint64_t>());
  }
  return {host,
          GpuNumberCell(Field(gpu, "index")),
          Text(gpu, "name"),
          GpuNumberCell(Field(gpu, "utilization_percent"), "%"),
          mem,
          GpuNumberCell(Field(gpu, "temperature_celsius"), " C")};
}

json GpusEntry(const std::string& host, const Result<json>& status, bool only_free) {
  json entry = {{"host", host},     {"answered", false}, {"gpu_state", nullptr},
                {"error", nullptr}, {"hint", nullptr},   {"gpus", json::array()}};
  if (!status.ok()) {
    entry["error"] = status.error().message;
    if (!status.error().hint.empty()) entry["hint"] = status.error().hint;
    return entry;
  }
  entry["answered"] = true;
  const json& gpu = Field(*status, "gpu");
  entry["gpu_state"] = Text(gpu, "state").empty() ? "unknown" : Text(gpu, "state");
  if (!Text(gpu, "error").empty()) entry["error"] = Text(gpu, "error");
  const json& gpus = Field(*status, "gpus");
  if (!gpus.is_array()) return entry;
  for (json g : gpus) {
    if (!g.is_object()) continue;
    g["top_process"] = TopGpuProcess(g);
    g["free"] = GpuIsFree(g);
    if (only_free && !g["free"].get<bool>()) continue;
    entry["gpus"].push_back(std::move(g));
  }
  return entry;
}

json GpusEntryNotUp(const std::string& host, const std::string& state) {
  return {{"host", host},
          {"answered", false},
          {"gpu_state", nullptr},
          {"error", host + " is " + state + ", not asked"},
          {"hint", state == "needs-login" ? json("tether login " + host) : json()},
          {"gpus", json::array()}};
}

bool GpusEntryAnswered(const json& entry) {
  const json& answered = Field(entry, "answered");
  return answered.is_boolean() && answered.get<bool>();
}

std::string FormatGpus(const json& entries, bool only_free) {
  std::vector<std::vector<std::string>> rows = {
      {"HOST", "GPU", "NAME", "UTIL", "MEMORY", "TEMP", "TOP PROCESS", "FREE"}};
  std::vector<std::string> notes;
  for (const json& e : entries) {
    const std::string host = Text(e, "host");
    for (const json& g : Field(e, "gpus")) {
      std::vector<std::string> row = GpuCells(host, g);
      row.push_back(TopProcessCell(g));
      row.push_back(GpuIsFree(g) ? "yes" : "no");
      rows.push_back(std::move(row));
    }
    std::string note = GpusEntryAnswered(e) ? GpuStateNote(e) : Text(e, "error");
    if (note.empty()) continue;
    const std::string hint = Text(e, "hint");
    notes.push_back(host + ": " + note + (hint.empty() ? "" : " (" + hint + ")"));
  }
  std::string out;
  if (rows.size() > 1) {
    out = FormatTable(rows);
  } else if (only_free) {
    out = "no free GPU\n";
  }
  if (!out.empty() && !notes.empty()) out += "\n";
  for (const auto& n : notes) out += "  " + n + "\n";
  return out;
}

}  // namespace tether::cli
