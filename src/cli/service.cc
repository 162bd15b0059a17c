#include "cli/service.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/errors.h"
#include "common/fs.h"
#include "common/process.h"
#include "daemon/state_dir.h"

namespace tether::cli {
namespace {

#ifdef __APPLE__
constexpr bool kLaunchd = true;
#else
constexpr bool kLaunchd = false;
#endif

// This binary's absolute path: what the service runs.
std::string SelfPath() {
  std::string self = SelfExecutablePath();
  return self.empty() ? "tether" : self;
}

std::string ConfigHome() {
  const char* x = std::getenv("XDG_CONFIG_HOME");
  return x != nullptr && *x != '\0' ? x : HomeDir() + "/.config";
}

std::string LaunchdLabel(const std::string& host) {
  return "dev.tether." + daemon::FileNameFor(host);
}

// Where the service's file goes on this system.
std::string ServicePath(const std::string& host) {
  if (kLaunchd) return HomeDir() + "/Library/LaunchAgents/" + LaunchdLabel(host) + ".plist";
  return ConfigHome() + "/systemd/user/" + ServiceName(host) + ".service";
}

// Runs argv (searched in PATH), its output to ours, bounded; its exit status, or -1 when
// it could not start or did not end.
int Run(const std::vector<std::string>& argv) {
  ProcessOptions options;
  options.timeout = std::chrono::seconds(60);
  options.capture_stdout = false;
  ProcessResult r = RunProcess(argv, options);
  return r.started && !r.timed_out && r.signal == 0 ? r.exit_code : -1;
}

std::string Joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

}  // namespace

std::string ServiceName(const std::string& host) { return "tether-" + daemon::FileNameFor(host); }

std::string SystemdQuote(const std::string& arg) {
  bool plain = !arg.empty();
  for (char c : arg) {
    if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\\' || c == ';' || c == '$') {
      plain = false;
    }
  }
  std::string out;
  for (char c : arg) {
    if (c == '%') {
      out += "%%";
    } else if (!plain && (c == '"' || c == '\\')) {
      out += '\\';
      out += c;
    } else if (!plain && c == '$') {
      out += "$$";
    } else {
      out += c;
    }
  }
  return plain ? out : "\"" + out + "\"";
}

std::string XmlEscape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

std::vector<std::string> UpArgs(const ServiceSpec& spec) {
  std::vector<std::string> args = {spec.tether};
  if (!spec.config_file.empty()) args.insert(args.end(), {"-F", spec.config_file});
  args.insert(args.end(), {"up", spec.host, "--foreground"});
  return args;
}

}  // namespace

std::string SystemdUnit(const ServiceSpec& spec) {
  std::string start, stop = SystemdQuote(spec.tether);
  for (const std::string& a : UpArgs(spec)) start += (start.empty() ? "" : " ") + SystemdQuote(a);
  if (!spec.config_file.empty()) stop += " -F " + SystemdQuote(spec.config_file);
  stop += " down " + SystemdQuote(spec.host);
  return "# Written by `tether service install`; `tether service uninstall " + spec.host +
         "` removes it.\n"
         "[Unit]\n"
         "Description=tether: keep " +
         spec.host +
         " tethered\n"
         "Wants=network-online.target\n"
         "After=network-online.target\n"
         // A daemon that keeps failing (a refused login, a bad config) is tried again every
         // RestartSec, but not forever: 5 failures in 10 minutes stop it.
         "StartLimitIntervalSec=600\n"
         "StartLimitBurst=5\n"
         "\n"
         "[Service]\n"
         "Type=simple\n"
         "ExecStart=" +
         start +
         "\n"
         "ExecStop=" +
         stop +
         "\n"
         "Restart=on-failure\n"
         "RestartSec=10\n"
         "\n"
         "[Install]\n"
         "WantedBy=default.target\n";
}

std::string LaunchdPlist(const ServiceSpec& spec, const std::string& label,
                         const std::string& log) {
  std::string args;
  for (const std::string& a : UpArgs(spec)) args += "    <string>" + XmlEscape(a) + "</string>\n";
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
         "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
         "<!-- Written by `tether service install`; `tether service uninstall " +
         XmlEscape(spec.host) +
         "` removes it. -->\n"
         "<plist version=\"1.0\">\n"
         "<dict>\n"
         "  <key>Label</key>\n"
         "  <string>" +
         XmlEscape(label) +
         "</string>\n"
         "  <key>ProgramArguments</key>\n"
         "  <array>\n" +
         args +
         "  </array>\n"
         "  <key>RunAtLoad</key>\n"
         "  <true/>\n"
         "  <key>KeepAlive</key>\n"
         "  <dict>\n"
         "    <key>SuccessfulExit</key>\n"
         "    <false/>\n"
         "  </dict>\n"
         "  <key>ThrottleInterval</key>\n"
         "  <integer>10</integer>\n"
         "  <key>StandardErrorPath</key>\n"
         "  <string>" +
         XmlEscape(log) +
         "</string>\n"
         "</dict>\n"
         "</plist>\n";
}

int RunServiceInstall(const GlobalOptions& global, const ServiceOptions& options) {
  ServiceSpec spec{SelfPath(), options.host, global.config_file};
  if (!spec.config_file.empty() && spec.config_file[0] != '/') {
    // The service starts elsewhere: a relative -F would name another file there.
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) != nullptr)
      spec.config_file = std::string(cwd) + "/" + spec.config_file;
  }
  const std::string path = ServicePath(options.host);
  const std::string text =
      kLaunchd ? LaunchdPlist(spec, LaunchdLabel(options.host),
                              HomeDir() + "/Library/Logs/" + ServiceName(options.host) + ".log")
               : SystemdUnit(spec);
  if (options.print) {
    std::printf("# %s\n%s", path.c_str(), text.c_str());
    return 0;
  }
  std::string failed;
  if (int err = WriteFileAtomically(path, text, 0644, &failed)) {
    PrintError(MakeError("service", "cannot write " + failed + ": " + std::strerror(err)));
    return 1;
  }
  std::printf("%s: wrote %s\n", options.host.c_str(), path.c_str());
  const std::vector<std::vector<std::string>> enable =
      kLaunchd ? std::vector<std::vector<std::string>>{{"launchctl", "load", "-w", path}}
               : std::vector<std::vector<std::string>>{{"systemctl", "--user", "daemon-reload"},
                                                       {"systemctl", "--user", "enable", "--now",
                                                        ServiceName(options.host) + ".service"}};
  for (const auto& argv : enable) {
    if (Run(argv) != 0) {
      std::printf("  not started: `%s` failed (no user session here?); run it at login, or:\n",
                  Joined(argv).c_str());
      for (const auto& a : enable) std::printf("    %s\n", Joined(a).c_str());
      return 1;
    }
  }
  std::printf(
      "  %s comes up at login and again after a failure; `tether service uninstall %s` "
      "stops that\n",
      options.host.c_str(), options.host.c_str());
  return 0;
}

int RunServiceUninstall(const GlobalOptions&, const ServiceOptions& options) {
  const std::string path = ServicePath(options.host);
  if (::access(path.c_str(), F_OK) != 0) {
    PrintError(MakeError("service", "no service for " + options.host + " (" + path + ")",
                         "`tether service install " + options.host + "` makes one"));
    return 1;
  }
  // Stopped first (best effort: there may be no user session), then removed.
  if (kLaunchd) {
    (void)Run({"launchctl", "unload", "-w", path});
  } else {
    (void)Run({"systemctl", "--user", "disable", "--now", ServiceName(options.host) + ".service"});
  }
  if (::unlink(path.c_str()) != 0) {
    PrintError(MakeError("service", "cannot remove " + path + ": " + std::strerror(errno)));
    return 1;
  }
  if (!kLaunchd) (void)Run({"systemctl", "--user", "daemon-reload"});
  std::printf("%s: removed %s\n", options.host.c_str(), path.c_str());
  return 0;
}

}  // namespace tether::cli
