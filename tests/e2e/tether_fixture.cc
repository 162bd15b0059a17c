#include "e2e/tether_fixture.h"

#include <filesystem>

namespace tether::testing {

std::vector<std::string> TetherTest::StateFiles() const {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(state_.path(), ec)) {
    if (e.path().extension() == ".log") continue;
    files.push_back(e.path().filename().string());
  }
  return files;
}

}  // namespace tether::testing
