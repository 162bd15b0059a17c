// Requests to a daemon's control socket and their replies (docs/control-protocol.md).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "common/result.h"
#include "common/unique_fd.h"

namespace tether::control {

// One connection carrying requests one after another (a login's prompts and answers).
class ControlConnection {
 public:
  static Result<ControlConnection> Open(const std::string& socket_path);

  // Sends `request` as one line and waits up to `timeout` for the reply line. Errors use
  // the step "control".
  Result<nlohmann::json> Request(const nlohmann::json& request, std::chrono::milliseconds timeout);

 private:
  ControlConnection(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  UniqueFd fd_;
  std::string path_;
  std::string in_;  // read past the last reply
};

// One request on a connection of its own.
Result<nlohmann::json> Request(const std::string& socket_path, const nlohmann::json& request,
                               std::chrono::milliseconds timeout);

}  // namespace tether::control
