// How the CLI reports an Error: "tether: step: message" and an indented hint.
#pragma once

#include "common/result.h"

namespace tether::cli {

void PrintError(const Error& error);

}  // namespace tether::cli
