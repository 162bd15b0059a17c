#include "test_util.h"

#ifndef TETHER_AGENT_TESTDATA
#error "TETHER_AGENT_TESTDATA must name tests/unit/agent/testdata"
#endif

namespace tether::agent::testing {

std::string FixturePath(const std::string& name) {
  return std::string(TETHER_AGENT_TESTDATA) + "/" + name;
}

}  // namespace tether::agent::testing
