// What the daemon runs on the server for --fast-exec (daemon/fast_exec.h), run here by sh
// against a home of the test's: the start's words when the binary is missing or the
// system differs, and the copy's private file. Which commands the runner may take
// (SessionPool::ForRunner). The runner itself, over a real sshd, is in tests/e2e.
#include "daemon/fast_exec.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

namespace tether::daemon {
namespace {

// A directory of the test's, removed after it.
class Home {
 public:
  Home() {
    char dir[] = "/tmp/tether-fast-exec-XXXXXX";
    path_ = ::mkdtemp(dir) != nullptr ? dir : "";
  }
  ~Home() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void Write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// `command` run by sh with HOME=home and `input` on its stdin; its stdout.
std::string RunSh(const std::string& home, const std::string& command,
                  const std::string& input = "") {
  Write(home + "/script", command);
  Write(home + "/input", input);
  const std::string line =
      "HOME='" + home + "' timeout 10 /bin/sh '" + home + "/script' < '" + home + "/input'";
  std::string out;
  if (FILE* p = ::popen(line.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

std::string ThisSystem() {
  utsname me{};
  ::uname(&me);
  return std::string(me.sysname) + " " + me.machine;
}

TEST(FastExecCommands, TheStartSaysWhatIsMissingOrDifferent) {
  Home home;
  ASSERT_FALSE(home.path().empty());
  const std::string path = "\"$HOME/.cache/tether/bin/tether-agent-0123\"";
  EXPECT_EQ(RunSh(home.path(), RunnerStartCommand(path, ThisSystem())), "tether-runner: missing\n");
  EXPECT_EQ(
      RunSh(home.path(), RunnerStartCommand(path, "Plan9 mips")).rfind("tether-runner: system ", 0),
      0u);
  // A quote in what we compare with stays text.
  EXPECT_EQ(RunSh(home.path(), RunnerStartCommand(path, "it's")).rfind("tether-runner: system ", 0),
            0u);
}

TEST(FastExecCommands, TheCopyIsPrivateAndWhole) {
  Home home;
  ASSERT_FALSE(home.path().empty());
  const std::string path = "\"$HOME/.cache/tether/bin/tether-agent-0123\"";
  const std::string binary = "#!/bin/sh\necho \"runner $*\"\n" + std::string(100000, '#') + "\n";
  RunSh(home.path(), RunnerInstallCommand(path), binary);
  const std::string file = home.path() + "/.cache/tether/bin/tether-agent-0123";
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::ifstream in(file, std::ios::binary);
  std::string copied((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(copied, binary);
  struct stat dir {};
  ASSERT_EQ(::stat((home.path() + "/.cache/tether/bin").c_str(), &dir), 0);
  EXPECT_EQ(dir.st_mode & 0077, 0u);
  // Now the start runs it, with --runner.
  EXPECT_EQ(RunSh(home.path(), RunnerStartCommand(path, ThisSystem())), "runner --runner\n");
}

TEST(FastExecPool, OnlyCommandsWithoutAPtyGoByTheRunner) {
  net::EventLoop loop;
  forward::WindowBudget budget(1u << 20);
  config::HostConfig host;
  host.alias = "h";
  SessionPool pool(loop, host, budget);
  ExecRequest plain;
  plain.command = "make -j8";
  EXPECT_FALSE(pool.ForRunner(plain)) << "no runner yet";
  pool.SetRunner("/run/user/1000/tether/runner-x.sock");
  EXPECT_TRUE(pool.ForRunner(plain));
  for (auto change : std::vector<std::function<void(ExecRequest&)>>{
           [](ExecRequest& r) { r.pty = true; }, [](ExecRequest& r) { r.subsystem = true; },
           [](ExecRequest& r) { r.command.clear(); },  // a shell
           [](ExecRequest& r) { r.force_session = true; },
           [](ExecRequest& r) { r.stdio_forward = true; },
           // What the server's AcceptEnv does with it is not known yet.
           [](ExecRequest& r) { r.env = {"LANG=C.UTF-8"}; }}) {
    ExecRequest r = plain;
    change(r);
    EXPECT_FALSE(pool.ForRunner(r));
  }
  pool.SetRunner("");
  EXPECT_FALSE(pool.ForRunner(plain));
}

}  // namespace
}  // namespace tether::daemon
