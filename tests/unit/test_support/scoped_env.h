// One environment variable as a test wants it (a value, or unset with nullptr), and the
// runner's value back when the test ends. Tests that read the environment must not depend
// on the runner's.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace tether::test_support {

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* was = std::getenv(name)) saved_ = was;
    Set(value);
  }
  ~ScopedEnv() { Set(saved_ ? saved_->c_str() : nullptr); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

  void Set(const char* value) {
    if (value == nullptr) {
      ::unsetenv(name_.c_str());
    } else {
      ::setenv(name_.c_str(), value, 1);
    }
  }

 private:
  std::string name_;
  std::optional<std::string> saved_;
};

}  // namespace tether::test_support
