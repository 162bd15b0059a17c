#include "agent/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>
#include <vector>

#include "agent/api.h"
#include "common/text.h"

namespace tether::agent {
namespace {

constexpr double kMebibyte = 1024.0 * 1024.0;
// Doubles hold every integer up to 2^53 exactly; up to there an integral value prints
// without a fraction.
constexpr double kMaxExactInteger = 9007199254740992.0;

using Labels = std::vector<std::pair<std::string_view, std::string>>;

// One metric family: HELP and TYPE once, then its samples. An empty family is not
// written at all.
class Family {
 public:
  Family(std::string_view name, std::string_view type, std::string_view help)
      : name_(name), type_(type), help_(help) {}

  Family& Add(const Labels& labels, double value) {
    samples_ += name_;
    if (!labels.empty()) {
      samples_ += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) samples_ += ',';
        samples_ += labels[i].first;
        samples_ += "=\"";
        samples_ += EscapeLabelValue(labels[i].second);
        samples_ += '"';
      }
      samples_ += '}';
    }
    samples_ += ' ';
    samples_ += FormatSampleValue(value);
    samples_ += '\n';
    return *this;
  }
  Family& Add(double value) { return Add({}, value); }

  void WriteTo(std::string& out) const {
    if (samples_.empty()) return;
    out += "# HELP ";
    out += name_;
    out += ' ';
    out += help_;  // our own constant text: no backslash or newline to escape
    out += "\n# TYPE ";
    out += name_;
    out += ' ';
    out += type_;
    out += '\n';
    out += samples_;
  }

 private:
  std::string_view name_;
  std::string_view type_;
  std::string_view help_;
  std::string samples_;
};

void Gauge(std::string& out, std::string_view name, std::string_view help, double value) {
  Family(name, "gauge", help).Add(value).WriteTo(out);
}

Labels GpuLabels(const Gpu& gpu) {
  return {{"gpu", std::to_string(gpu.index)}, {"uuid", gpu.uuid}};
}

// A per-GPU gauge from an optional field; GPUs without the value are left out.
template <typename Get>
void GpuGauge(std::string& out, const SystemStatus& s, std::string_view name, std::string_view help,
              Get get) {
  Family f(name, "gauge", help);
  for (const Gpu& gpu : s.gpu.gpus) {
    if (auto v = get(gpu)) f.Add(GpuLabels(gpu), *v);
  }
  f.WriteTo(out);
}

void WriteNode(std::string& out, const SystemStatus& s) {
  if (s.uptime_seconds) {
    Gauge(out, "tether_node_uptime_seconds", "Seconds since the server booted.", *s.uptime_seconds);
  }
  Gauge(out, "tether_node_cpus", "Online CPUs.", s.cpus);
  if (s.load) {
    Gauge(out, "tether_node_load1", "1-minute load average.", s.load->load1);
    Gauge(out, "tether_node_load5", "5-minute load average.", s.load->load5);
    Gauge(out, "tether_node_load15", "15-minute load average.", s.load->load15);
    Gauge(out, "tether_node_procs_running", "Runnable tasks right now.",
          static_cast<double>(s.load->running));
  }
  if (s.memory) {
    const MemInfo& m = *s.memory;
    Gauge(out, "tether_node_memory_total_bytes", "Physical memory.",
          static_cast<double>(m.total_bytes));
    Gauge(out, "tether_node_memory_available_bytes",
          "Memory available for new work without swapping (MemAvailable).",
          static_cast<double>(m.available_bytes));
    Gauge(out, "tether_node_swap_total_bytes", "Swap space.",
          static_cast<double>(m.swap_total_bytes));
    Gauge(out, "tether_node_swap_free_bytes", "Unused swap space.",
          static_cast<double>(m.swap_free_bytes));
  }
  Family total("tether_node_disk_total_bytes", "gauge", "Size of the filesystem holding path.");
  Family avail("tether_node_disk_available_bytes", "gauge",
               "Bytes this user may still write on the filesystem holding path.");
  Family used("tether_node_disk_used_bytes", "gauge", "Bytes in use on the filesystem.");
  for (const DiskUsage& d : s.disks) {
    if (!d.total_bytes || !d.free_bytes || !d.available_bytes) continue;
    Labels labels = {{"path", d.path}};
    total.Add(labels, static_cast<double>(*d.total_bytes));
    avail.Add(labels, static_cast<double>(*d.available_bytes));
    used.Add(labels, static_cast<double>(*d.total_bytes - std::min(*d.total_bytes, *d.free_bytes)));
  }
  total.WriteTo(out);
  avail.WriteTo(out);
  used.WriteTo(out);
}

void WriteGpus(std::string& out, const SystemStatus& s) {
  Family state("tether_gpu_state", "gauge",
               "What nvidia-smi said: 1 for the current state (ok, no_devices, absent, error).");
  for (GpuState st : {GpuState::kOk, GpuState::kNoDevices, GpuState::kAbsent, GpuState::kError}) {
    state.Add({{"state", std::string(GpuStateName(st))}}, st == s.gpu.state ? 1 : 0);
  }
  state.WriteTo(out);

  Family info("tether_gpu_info", "gauge", "One series per GPU, carrying its name.");
  for (const Gpu& gpu : s.gpu.gpus) {
    Labels labels = GpuLabels(gpu);
    labels.emplace_back("name", gpu.name);
    info.Add(labels, 1);
  }
  info.WriteTo(out);

  GpuGauge(out, s, "tether_gpu_utilization_percent", "GPU busy time over the last sample period.",
           [](const Gpu& g) { return g.utilization_percent; });
  GpuGauge(out, s, "tether_gpu_memory_used_bytes", "GPU memory in use.",
           [](const Gpu& g) -> std::optional<double> {
             if (!g.memory_used_mib) return std::nullopt;
             return static_cast<double>(*g.memory_used_mib) * kMebibyte;
           });
  GpuGauge(out, s, "tether_gpu_memory_total_bytes", "GPU memory.",
           [](const Gpu& g) -> std::optional<double> {
             if (!g.memory_total_mib) return std::nullopt;
             return static_cast<double>(*g.memory_total_mib) * kMebibyte;
           });
  GpuGauge(out, s, "tether_gpu_temperature_celsius", "GPU core temperature.",
           [](const Gpu& g) { return g.temperature_celsius; });
  GpuGauge(out, s, "tether_gpu_power_watts", "GPU power draw.",
           [](const Gpu& g) { return g.power_watts; });
  GpuGauge(out, s, "tether_gpu_processes", "Compute processes on the GPU.",
           [](const Gpu& g) { return std::optional<double>(g.processes.size()); });

  Family proc_mem("tether_gpu_process_memory_used_bytes", "gauge",
                  "GPU memory held by one compute process.");
  for (const Gpu& gpu : s.gpu.gpus) {
    for (const GpuProcess& p : gpu.processes) {
      if (!p.used_memory_mib) continue;
      Labels labels = GpuLabels(gpu);
      labels.emplace_back("pid", std::to_string(p.pid));
      labels.emplace_back("process", p.name);
      proc_mem.Add(labels, static_cast<double>(*p.used_memory_mib) * kMebibyte);
    }
  }
  proc_mem.WriteTo(out);
}

void WriteRest(std::string& out, const SystemStatus& s) {
  Family ports("tether_listening_port", "gauge", "A TCP socket listening on this server.");
  for (const ListeningPort& p : s.ports) {
    ports.Add({{"protocol", p.ipv6 ? "tcp6" : "tcp"},
               {"address", p.address},
               {"port", std::to_string(p.port)}},
              1);
  }
  ports.WriteTo(out);

  if (s.tmux.available) {
    Gauge(out, "tether_tmux_sessions", "tmux sessions of the agent's user.",
          static_cast<double>(s.tmux.sessions.size()));
    Family attached("tether_tmux_session_attached_clients", "gauge",
                    "Clients attached to a tmux session.");
    for (const TmuxSession& t : s.tmux.sessions) {
      attached.Add({{"session", t.name}}, static_cast<double>(t.attached));
    }
    attached.WriteTo(out);
  }

  const LeaseSnapshot& lease = s.lease;
  Gauge(out, "tether_lease_enabled", "1 when the agent keeps a lease.", lease.enabled ? 1 : 0);
  if (lease.enabled) {
    Gauge(out, "tether_lease_armed", "1 while the lease is counting down.", lease.armed ? 1 : 0);
    if (lease.remaining) {
      Gauge(out, "tether_lease_remaining_seconds", "Time until the lease command runs.",
            static_cast<double>(lease.remaining->count()) / 1000.0);
    }
    Family("tether_lease_expirations_total", "counter",
           "Times the lease ran out and ran its command.")
        .Add(lease.expirations)
        .WriteTo(out);
  }
  Gauge(out, "tether_agent_collect_errors", "Status sections that could not be read just now.",
        static_cast<double>(s.errors.size()));
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string clean = SanitizeUtf8(value);
  std::string out;
  out.reserve(clean.size());
  for (char c : clean) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::to_chars_result r;
  if (value == std::trunc(value) && std::fabs(value) <= kMaxExactInteger) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(value));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, value);
  }
  return std::string(buf, r.ptr);
}

std::string RenderMetrics(const SystemStatus& s, std::string_view agent_version) {
  std::string out;
  Family("tether_agent_info", "gauge", "The agent's version; always 1.")
      .Add({{"version", std::string(agent_version)}, {"api", std::to_string(kApiVersion)}}, 1)
      .WriteTo(out);
  WriteNode(out, s);
  WriteGpus(out, s);
  WriteRest(out, s);
  return out;
}

}  // namespace tether::agent
