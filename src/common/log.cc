#include "common/log.h"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace tether {

void InitLogging(const std::string& path, int verbosity) {
  // Thread-safe loggers: connects, jump relays and lanes log from their own threads.
  std::shared_ptr<spdlog::logger> logger;
  if (path.empty()) {
    logger = spdlog::stderr_logger_mt("tether");
  } else {
    // Size-capped: a daemon that runs for weeks keeps at most kLogFiles x kLogFileBytes.
    constexpr size_t kLogFileBytes = 10u << 20;
    constexpr size_t kLogFiles = 3;
    logger = spdlog::rotating_logger_mt("tether", path, kLogFileBytes, kLogFiles);
  }
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  logger->set_level(verbosity <= 0
                        ? spdlog::level::info
                        : (verbosity == 1 ? spdlog::level::debug : spdlog::level::trace));
  // Every line reaches the file at once: `tether logs -f` and post-mortems need it, and
  // the volume is low (connections, not bytes).
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

}  // namespace tether
