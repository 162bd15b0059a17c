// tether gpus [--json] [--free]: one table over the GPUs of every host that is up, from each
// host's tether-agent through its `up --agent` forward, all asked at once, so "which of my
// servers has a free GPU?" is one command. Exit status: 0 when at least one agent answered,
// 1 when none did (no host up, or none with an agent).
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "cli/agent.h"
#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/gpu_table.h"
#include "cli/hosts.h"

namespace tether::cli {
namespace {

// Per host, and so for the table: an agent whose nvidia-smi runs without persistence mode
// answers in a second or two; one slower than this is left out with the reason.
constexpr std::chrono::milliseconds kHostTimeout{5000};

}  // namespace

int RunGpus(const GlobalOptions& /*global*/, const GpusOptions& options) {
  using nlohmann::json;
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  json hosts = CollectStatus(*state, "");
  std::vector<json> entries(hosts.size());
  {
    // One thread a host, each bounded by kHostTimeout: the slowest host sets the wait.
    std::vector<std::thread> asking;
    for (size_t i = 0; i < hosts.size(); ++i) {
      const std::string name = hosts[i].value("host", "");
      const std::string link = hosts[i].value("state", "");
      if (link != "up") {
        entries[i] = GpusEntryNotUp(name, link);
        continue;
      }
      auto record = LoadAgentRecord(name);  // here: it may ask the password database
      if (!record.ok()) {
        entries[i] = GpusEntry(name, record.take_error(), options.free);
        continue;
      }
      asking.emplace_back([&, i, name, record = std::move(*record)] {
        entries[i] =
            GpusEntry(name, FetchAgentStatus(*state, name, record, kHostTimeout), options.free);
      });
    }
    for (auto& t : asking) t.join();
  }
  json out = json::array();
  bool any_answered = false;
  for (auto& e : entries) {
    any_answered = any_answered || GpusEntryAnswered(e);
    out.push_back(std::move(e));
  }

  if (options.json) {
    std::printf("%s\n", json{{"hosts", out}}.dump(2).c_str());
  } else if (out.empty()) {
    std::printf("no hosts up (tether up HOST --agent)\n");
  } else {
    std::printf("%s", FormatGpus(out, options.free).c_str());
  }
  return any_answered ? 0 : 1;
}

}  // namespace tether::cli
