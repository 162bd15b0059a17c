// tether env HOST [--shell sh|fish]: the lines that point a shell on the server at the
// server proxy of `tether up HOST --proxy`: http_proxy, https_proxy, their upper-case
// twins, ALL_PROXY (SOCKS5 with names resolved through the laptop) and no_proxy for the
// server's own loopback. Nothing is written anywhere: paste them, or use `tether run`.
// With --local, the same for the laptop's own programs, pointing at the host's -D port.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/errors.h"
#include "cli/hosts.h"
#include "cli/proxy_env.h"
#include "control/control_client.h"
#include "daemon/state_dir.h"

namespace tether::cli {

int RunEnv(const GlobalOptions& /*global*/, const EnvOptions& options) {
  auto state = daemon::StateDir::Open();
  if (!state.ok()) {
    PrintError(state.error());
    return 1;
  }
  const std::string name = daemon::FileNameFor(options.host);
  if (!ProbeHost(*state, name).running) {
    PrintError(MakeError("env", options.host + " is not up",
                         "run `tether up " + options.host + " --proxy` first"));
    return 1;
  }
  auto vars = options.local ? FetchLocalProxyVariables(*state, options.host)
                            : FetchProxyVariables(*state, options.host);
  if (!vars.ok()) {
    PrintError(vars.error());
    return 1;
  }
  std::printf("%s", FormatExports(*vars, options.shell).c_str());
  return 0;
}

}  // namespace tether::cli
