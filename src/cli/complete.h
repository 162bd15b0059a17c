// tether __complete: what the shell completions (completions/) offer, told by the
// command line itself, so that they list what this binary takes and cannot fall behind it.
// A hidden verb: not in --help, and its output is for the completion scripts alone.
//
//   tether __complete verbs [VERB]      the verbs (or VERB's own, e.g. agent's), one a line:
//                                       NAME<TAB>DESCRIPTION
//   tether __complete options [VERB...] the options of the verb (none: the global ones):
//                                       NAME<TAB>value|flag<TAB>DESCRIPTION
//   tether [-F FILE] __complete hosts   the Host names of ssh_config without wildcards
//                                       (Include followed), then the hosts a daemon runs
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace tether::cli {

// Runs `tether __complete ARGS`; `app` is the command line, built. Returns the exit code.
int RunComplete(const CLI::App& app, const GlobalOptions& global,
                const std::vector<std::string>& args);

// The names of `Host` lines in `config_file` and the files it includes (a relative
// Include is under `ssh_dir`, as ssh's), in order, each once; patterns (* ? !) left out.
// A missing file gives nothing.
std::vector<std::string> ConfiguredHostNames(const std::string& config_file,
                                             const std::string& ssh_dir);

}  // namespace tether::cli
