#include "common/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace tether {

void InitLogging(const std::string& path, int verbosity) {
  std::shared_ptr<spdlog::logger> logger;
  if (path.empty()) {
    logger = spdlog::stderr_logger_st("tether");
  } else {
    logger = spdlog::basic_logger_st("tether", path);
  }
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  logger->set_level(verbosity <= 0
                        ? spdlog::level::info
                        : (verbosity == 1 ? spdlog::level::debug : spdlog::level::trace));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace tether
