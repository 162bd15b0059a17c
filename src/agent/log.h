// The agent's log: one line per event on stderr (a file under --daemon), each written
// with a single write(2) so lines from HTTP worker threads never interleave. No spdlog:
// the agent is meant to be copied to servers, and this is all it needs.
#pragma once

#include <string>

namespace tether::agent {

// "2024-05-01T12:00:00Z tether-agent: <line>\n" to stderr. Thread-safe.
void Log(const std::string& line);

}  // namespace tether::agent
