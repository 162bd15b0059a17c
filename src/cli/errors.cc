#include "cli/errors.h"

#include <cstdio>

namespace tether::cli {

void PrintError(const Error& error) {
  std::fprintf(stderr, "tether: %s\n", error.ToString().c_str());
}

}  // namespace tether::cli
