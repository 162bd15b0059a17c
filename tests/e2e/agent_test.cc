// End-to-end: tether agent install copies the agent (one static binary) over the daemon's
// connection to a real sshd, starts it on a unix socket only its account can open, keeps
// its token and socket path; up --agent forwards a laptop socket to it (direct-streamlocal)
// and status --remote reads the server's status through the tunnel with that token. An
// install with --port keeps TCP on the server's loopback.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <filesystem>

#include <chrono>
#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

// The permission bits of `path`, or nullopt when it does not exist.
std::optional<unsigned> FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return st.st_mode & 07777;
}

class AgentTest : public TetherTest {
 protected:
  void TearDown() override {
    // The agent runs on the "server" (this machine) as a daemon of its own: end it by PID.
    auto pid = ReadFile(AgentDir() + "/agent.pid");
    if (pid.ok() && std::atoi(pid->c_str()) > 1) TerminatePid(std::atoi(pid->c_str()));
    TetherTest::TearDown();
  }
  std::string AgentDir() { return scratch_.File("server-home"); }
  // Under --dir the agent's socket is DIR/agent.sock.
  std::string AgentSocket() { return AgentDir() + "/agent.sock"; }
  std::string AgentBinary() {
    std::string tether = TetherBinary();
    return tether.substr(0, tether.rfind('/')) + "/tether-agent";
  }
  // curl straight at the agent's socket on the "server", with `args` before the URL.
  static CommandResult CurlSocket(const std::string& socket, const std::string& path,
                                  std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {"curl",         "-s",         "-o", "/dev/null",     "-w",
                                     "%{http_code}", "--max-time", "5",  "--unix-socket", socket};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("http://agent" + path);
    return RunCommand(argv);
  }
  // The laptop's TMPDIR: install's scratch copy is made and removed there.
  std::string LaptopTmp() {
    std::string dir = scratch_.File("laptop-tmp");
    ::mkdir(dir.c_str(), 0700);
    return dir;
  }
  CommandResult T(std::vector<std::string> args) {
    args.insert(args.begin(),
                {"-F", client_config_.empty() ? sshd_.config_path() : client_config_});
    return RunTether(
        state_.path(), args, seconds(90),
        {{"TETHER_CONFIG", scratch_.File("laptop/config.toml")}, {"TMPDIR", LaptopTmp()}});
  }
  std::string client_config_;  // "": the test bed's (Host testhost)
};

TEST_F(AgentTest, InstallForwardAndReadTheServersStatusThroughTheTunnel) {
  CommandResult install = T({"agent", "install", "testhost", "--dir", AgentDir()});
  ASSERT_TRUE(install.ok()) << install.Describe();
  EXPECT_NE(install.out.find("tether-agent 0.1.0 installed"), std::string::npos) << install.out;
  EXPECT_NE(install.out.find("on the server's unix:" + AgentSocket()), std::string::npos)
      << install.out;
  // The socket is its owner's alone, in a directory of its owner's alone.
  EXPECT_EQ(FileMode(AgentSocket()).value_or(0), 0600u);
  EXPECT_EQ(FileMode(AgentDir()).value_or(0) & 077, 0u);
  // The stripped copy was made in a private directory of its own, and nothing is left.
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(LaptopTmp(), ec)) << "left in TMPDIR";
  // The binary and its token are on the server, private; the token is on the laptop too.
  EXPECT_TRUE(FileMode(AgentDir() + "/bin/tether-agent").has_value());
  auto record = ReadFile(scratch_.File("laptop/agents/testhost.json"));
  ASSERT_TRUE(record.ok());
  auto token = nlohmann::json::parse(*record)["token"].get<std::string>();
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(ReadFile(AgentDir() + "/agent-token").value().substr(0, 64), token);
  EXPECT_EQ(FileMode(scratch_.File("laptop/agents/testhost.json")).value_or(0) & 0777, 0600);
  EXPECT_EQ(nlohmann::json::parse(*record)["socket"], AgentSocket()) << *record;

  CommandResult up = T({"up", "testhost", "--agent"});
  ASSERT_TRUE(up.ok()) << up.Describe();
  CommandResult status = T({"status", "testhost", "--remote", "--json"});
  ASSERT_TRUE(status.ok()) << status.Describe();
  auto j = nlohmann::json::parse(status.out);
  const auto& remote = j["hosts"][0]["remote"];
  ASSERT_TRUE(remote.contains("cpu")) << remote.dump();
  EXPECT_GT(remote["cpu"]["count"].get<int>(), 0);
  EXPECT_TRUE(remote["memory"]["total_bytes"].get<uint64_t>() > 0);
  EXPECT_TRUE(remote.contains("gpus"));
  // The people's view names the load.
  CommandResult table = T({"status", "--remote"});
  EXPECT_NE(table.out.find("testhost: load"), std::string::npos) << table.out;

  // Without the token, the agent refuses (straight at its socket, on the server).
  EXPECT_EQ(CurlSocket(AgentSocket(), "/status").out, "401");
  EXPECT_EQ(CurlSocket(AgentSocket(), "/lease", {"-H", "Authorization: Bearer " + token}).out,
            "200");
  // A wrong token on the laptop: a clear error, not garbage.
  auto rec = nlohmann::json::parse(*record);
  rec["token"] = std::string(64, '0');
  ASSERT_TRUE(WriteFile(scratch_.File("laptop/agents/testhost.json"), rec.dump()).ok());
  table = T({"status", "--remote"});
  EXPECT_NE(table.out.find("refused our token"), std::string::npos) << table.out;
}

TEST_F(AgentTest, StatusRemoteWithoutAnAgentSaysWhatToRun) {
  ASSERT_TRUE(T({"up", "testhost"}).ok());
  CommandResult table = T({"status", "--remote"});
  EXPECT_TRUE(table.ok());
  EXPECT_NE(table.out.find("tether agent install testhost"), std::string::npos) << table.out;
}

TEST_F(AgentTest, InstallFromAHomeWithNothingInItKeepsTheTokenWhereStatusFindsIt) {
  // A new laptop: no ~/.config, ~/.local or ~/.ssh yet (every directory is made on the way).
  const std::string home = scratch_.File("fresh-home");
  ASSERT_EQ(::mkdir(home.c_str(), 0700), 0);
  const Env env = {
      {"HOME", home}, {"XDG_CONFIG_HOME", ""}, {"TETHER_CONFIG", ""}, {"TMPDIR", LaptopTmp()}};
  auto tether = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"-F", sshd_.config_path()});
    return RunTether(state_.path(), args, seconds(90), env);
  };
  CommandResult install = tether({"agent", "install", "testhost", "--dir", AgentDir()});
  ASSERT_TRUE(install.ok()) << install.Describe();
  const std::string record = home + "/.config/tether/agents/testhost.json";
  auto text = ReadFile(record);
  ASSERT_TRUE(text.ok()) << "install said: " << install.out;
  EXPECT_EQ(nlohmann::json::parse(*text)["token"].get<std::string>().size(), 64u);
  EXPECT_EQ(FileMode(record).value_or(0), 0600u);
  for (const char* dir : {"/.config", "/.config/tether", "/.config/tether/agents"}) {
    EXPECT_EQ(FileMode(home + dir).value_or(0), 0700u) << dir;
  }
  ASSERT_TRUE(tether({"up", "testhost", "--agent"}).ok());
  CommandResult status = tether({"status", "testhost", "--remote"});
  EXPECT_NE(status.out.find("testhost: load"), std::string::npos) << status.Describe();
}

TEST_F(AgentTest, ATokenThatCannotBeKeptIsAnErrorNotASuccess) {
  // The config directory's parent is a file: nothing can be made below it.
  const std::string blocker = scratch_.File("blocker");
  ASSERT_TRUE(WriteFile(blocker, "not a directory").ok());
  CommandResult install = RunTether(
      state_.path(),
      {"-F", sshd_.config_path(), "agent", "install", "testhost", "--dir", AgentDir()}, seconds(90),
      {{"TETHER_CONFIG", blocker + "/tether/config.toml"}, {"TMPDIR", LaptopTmp()}});
  EXPECT_FALSE(install.ok()) << install.Describe();
  EXPECT_EQ(install.out.find("token kept"), std::string::npos) << install.out;
  EXPECT_NE(install.err.find("could not be kept"), std::string::npos) << install.Describe();
}

TEST_F(AgentTest, WithAPortTheAgentServesTcpAndAnOldRecordStillWorks) {
  uint16_t port = FreeTcpPort();
  CommandResult install =
      T({"agent", "install", "testhost", "--dir", AgentDir(), "--port", std::to_string(port)});
  ASSERT_TRUE(install.ok()) << install.Describe();
  EXPECT_NE(install.out.find("on the server's 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << install.out;
  auto record = ReadFile(scratch_.File("laptop/agents/testhost.json"));
  ASSERT_TRUE(record.ok());
  auto j = nlohmann::json::parse(*record);
  EXPECT_EQ(j["port"], port);
  EXPECT_FALSE(j.contains("socket"));
  // A record as installs before sockets wrote it: {"token", "port"}; --agent takes the port.
  ASSERT_TRUE(T({"up", "testhost", "--agent"}).ok());
  CommandResult status = T({"status", "testhost", "--remote"});
  EXPECT_NE(status.out.find("testhost: load"), std::string::npos) << status.Describe();
  CommandResult anonymous =
      RunCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                  "http://127.0.0.1:" + std::to_string(port) + "/status"});
  EXPECT_EQ(anonymous.out, "401");
}

// Moving an agent from a port to its socket (the upgrade from an install before sockets)
// needs no new `up`: the running forward is pointed at the socket.
TEST_F(AgentTest, ReinstallingOnTheSocketRepointsTheRunningForward) {
  uint16_t port = FreeTcpPort();
  ASSERT_TRUE(
      T({"agent", "install", "testhost", "--dir", AgentDir(), "--port", std::to_string(port)})
          .ok());
  ASSERT_TRUE(T({"up", "testhost", "--agent"}).ok());
  CommandResult install = T({"agent", "install", "testhost", "--dir", AgentDir()});
  ASSERT_TRUE(install.ok()) << install.Describe();
  EXPECT_NE(install.out.find("forward now goes to " + AgentSocket()), std::string::npos)
      << install.Describe();
  CommandResult status = T({"status", "testhost", "--remote"});
  EXPECT_NE(status.out.find("testhost: load"), std::string::npos) << status.Describe();
  // The agent on the port was stopped for the new one.
  CommandResult old = RunCommand({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  "--max-time", "5", "http://127.0.0.1:" + std::to_string(port)});
  EXPECT_EQ(old.out, "000") << old.Describe();
  // Installing again changes nothing that works.
  install = T({"agent", "install", "testhost", "--dir", AgentDir()});
  ASSERT_TRUE(install.ok()) << install.Describe();
  EXPECT_EQ(install.out.find("forward now goes to"), std::string::npos) << install.out;
  status = T({"status", "testhost", "--remote"});
  EXPECT_NE(status.out.find("testhost: load"), std::string::npos) << status.Describe();
}

// The point of the socket: on a shared server another account cannot reach the agent (to
// guess at it), nor take its place while it is down (to catch the laptop's token).
TEST_F(AgentTest, AnotherAccountCannotConnectToTheAgentsSocket) {
  OtherAccount mallory;
  ASSERT_TRUE(mallory.ok()) << mallory.error();
  CommandResult install = T({"agent", "install", "testhost", "--dir", AgentDir()});
  ASSERT_TRUE(install.ok()) << install.Describe();
  // The scratch directories on the way are the test's (0700): open them, as a home
  // directory on a real server often is, so only the agent's own protection is left.
  for (std::string dir = AgentDir(); dir.size() > 1; dir = dir.substr(0, dir.rfind('/'))) {
    if (dir != AgentDir()) {
      ASSERT_EQ(::chmod(dir.c_str(), 0755), 0) << dir;
    }
    if (dir == scratch_.path()) break;
  }
  auto connect = [&] {
    return mallory.Run({"/usr/bin/python3", "-c",
                        "import socket,sys\n"
                        "s=socket.socket(socket.AF_UNIX)\n"
                        "s.settimeout(5)\n"
                        "try:\n"
                        "  s.connect(sys.argv[1])\n"
                        "except OSError as e:\n"
                        "  print('refused', e.errno); sys.exit(0)\n"
                        "try:\n"
                        "  s.sendall(b'GET /lease HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n')\n"
                        "  print('answered' if s.recv(64) else 'closed')\n"
                        "except (ConnectionResetError, BrokenPipeError):\n"
                        "  print('closed')\n",
                        AgentSocket()});
  };
  // The directory (0700) and the socket (0600) keep it out.
  CommandResult r = connect();
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "refused 13\n") << r.Describe();  // EACCES
  // Even with the file system opened up on purpose, the agent closes it unanswered.
  ASSERT_EQ(::chmod(AgentDir().c_str(), 0755), 0);
  ASSERT_EQ(::chmod(AgentSocket().c_str(), 0666), 0);
  r = connect();
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out, "closed\n") << r.Describe();
  auto log = ReadFile(AgentDir() + "/agent.log");
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("closed a connection from uid " + std::to_string(mallory.uid())),
            std::string::npos)
      << *log;
  // Its owner still gets in.
  ASSERT_EQ(::chmod(AgentDir().c_str(), 0700), 0);
  ASSERT_TRUE(T({"up", "testhost", "--agent"}).ok());
  CommandResult status = T({"status", "testhost", "--remote"});
  EXPECT_NE(status.out.find("testhost: load"), std::string::npos) << status.Describe();
}

// A server's userland is not the laptop's: the agent must start with nothing from it, not
// even an environment (no HOME, no PATH), and serve.
std::string AgentLog(const std::string& dir) {
  auto log = ReadFile(dir + "/agent.log");
  return log.ok() ? *log : "";
}

TEST_F(AgentTest, TheStaticAgentRunsWithAnEmptyEnvironment) {
  const std::string dir = scratch_.File("bare");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string socket = dir + "/agent.sock";
  CommandResult ldd = RunCommand({"ldd", AgentBinary()});
  // A sanitizer build links the sanitizers' runtimes, which have no static form: there the
  // rest still runs without an environment (the static link is the normal build's, checked
  // here and by InstallFiles.AgentIsOneStaticBinary).
  if (ldd.out.find("libasan") == std::string::npos) {
    EXPECT_NE((ldd.out + ldd.err).find("not a dynamic executable"), std::string::npos)
        << ldd.Describe();
  }
  auto agent = SpawnProcess({"env", "-i", AgentBinary(), "--socket", socket, "--token-file",
                             dir + "/token", "--nvidia-smi", "/nonexistent/nvidia-smi"},
                            {}, dir + "/agent.log");
  ASSERT_TRUE(agent.ok()) << agent.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return FileMode(socket).has_value(); }, seconds(10))) << AgentLog(dir);
  auto token = ReadFile(dir + "/token");
  ASSERT_TRUE(token.ok());
  const std::string bearer = "Authorization: Bearer " + token->substr(0, 64);
  CommandResult status = RunCommand({"curl", "-s", "--max-time", "5", "--unix-socket", socket, "-H",
                                     bearer, "http://agent/status"});
  ASSERT_TRUE(status.ok()) << status.Describe();
  auto j = nlohmann::json::parse(status.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << status.out;
  EXPECT_GT(j["cpu"]["count"].get<int>(), 0);
  EXPECT_EQ(CurlSocket(socket, "/status").out, "401");
  // logind empties /run/user/UID when the account's last session ends; the agent outlives
  // it and makes its socket again (checked every second) once the directory is there.
  ASSERT_EQ(::unlink(socket.c_str()), 0);
  EXPECT_TRUE(WaitFor([&] { return FileMode(socket).has_value(); }, seconds(5))) << AgentLog(dir);
  EXPECT_EQ(CurlSocket(socket, "/lease", {"-H", bearer}).out, "200");
  EXPECT_NE(AgentLog(dir).find("listening again on unix:" + socket), std::string::npos)
      << AgentLog(dir);
  EXPECT_EQ(agent->Terminate(), 0) << AgentLog(dir);
  EXPECT_FALSE(FileMode(socket).has_value()) << "the socket outlived the agent";
}

// Two servers (both this sshd): gpubox runs an agent whose nvidia-smi (a script) reports a
// GPU busy with this test's own process and an idle one; plainbox is up without an agent.
TEST_F(AgentTest, GpusShowsEachGpuWhichAreFreeAndWhatToRunWhereThereIsNoAgent) {
  client_config_ = scratch_.File("two_hosts_config");
  ClientConfigOptions two_hosts;
  two_hosts.host = "gpubox plainbox";
  ASSERT_TRUE(sshd_.WriteClientConfig(client_config_, two_hosts).ok());
  const std::string dir = scratch_.File("gpubox");
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string pid = std::to_string(::getpid());
  const std::string fake = dir + "/nvidia-smi";
  ASSERT_TRUE(WriteFile(fake,
                        "#!/bin/sh\ncase \"$1\" in\n"
                        "  --query-gpu=*) echo '0, GPU-aaaa, NVIDIA H100 80GB HBM3, 97, 71234, "
                        "81559, 64, 612.3'; echo '1, GPU-bbbb, NVIDIA H100 80GB HBM3, 0, 2, 81559, "
                        "31, 70.1' ;;\n"
                        "  --query-compute-apps=*) echo 'GPU-aaaa, " +
                            pid +
                            ", /usr/bin/python3, 70000' ;;\n"
                            "  *) exit 2 ;;\nesac\n",
                        0755)
                  .ok());
  const std::string socket = dir + "/agent.sock";
  auto agent = SpawnProcess(
      {AgentBinary(), "--socket", socket, "--token-file", dir + "/token", "--nvidia-smi", fake}, {},
      dir + "/agent.log");
  ASSERT_TRUE(agent.ok()) << agent.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return FileMode(socket).has_value(); }, seconds(10))) << AgentLog(dir);
  auto token = ReadFile(dir + "/token");
  ASSERT_TRUE(token.ok());
  // What `agent install gpubox` would have kept on the laptop.
  ::mkdir(scratch_.File("laptop").c_str(), 0700);
  ::mkdir(scratch_.File("laptop/agents").c_str(), 0700);
  ASSERT_TRUE(WriteFile(scratch_.File("laptop/agents/gpubox.json"),
                        nlohmann::json{{"token", token->substr(0, 64)}, {"socket", socket}}.dump(),
                        0600)
                  .ok());
  CommandResult up = T({"up", "gpubox", "--agent"});
  ASSERT_TRUE(up.ok()) << up.Describe();
  up = T({"up", "plainbox"});
  ASSERT_TRUE(up.ok()) << up.Describe();

  CommandResult table = T({"gpus"});
  EXPECT_EQ(table.exit_code, 0) << table.Describe();
  EXPECT_EQ(table.out.find("HOST"), 0u) << table.out;
  // One row a GPU: the busy one names its process and user (this test's, root's), the idle
  // one is free.
  const size_t busy = table.out.find("\ngpubox  0 ");
  const size_t idle = table.out.find("\ngpubox  1 ");
  ASSERT_NE(busy, std::string::npos) << table.out;
  ASSERT_NE(idle, std::string::npos) << table.out;
  const std::string busy_row = table.out.substr(busy + 1, table.out.find('\n', busy + 1) - busy);
  const std::string idle_row = table.out.substr(idle + 1, table.out.find('\n', idle + 1) - idle);
  EXPECT_NE(busy_row.find("97%"), std::string::npos) << busy_row;
  EXPECT_NE(busy_row.find("69.6 GiB / 79.6 GiB"), std::string::npos) << busy_row;
  EXPECT_NE(busy_row.find("64 C"), std::string::npos) << busy_row;
  EXPECT_NE(busy_row.find("python3 (root)"), std::string::npos) << busy_row;
  EXPECT_EQ(busy_row.substr(busy_row.size() - 3), "no\n") << busy_row;
  EXPECT_EQ(idle_row.substr(idle_row.size() - 4), "yes\n") << idle_row;
  EXPECT_NE(table.out.find("  plainbox: no agent installed on plainbox from this laptop (tether "
                           "agent install plainbox, then tether up plainbox --agent)\n"),
            std::string::npos)
      << table.out;

  CommandResult free = T({"gpus", "--free"});
  EXPECT_EQ(free.exit_code, 0) << free.Describe();
  EXPECT_EQ(free.out.find("\ngpubox  0 "), std::string::npos) << free.out;
  EXPECT_NE(free.out.find("\ngpubox  1 "), std::string::npos) << free.out;
  EXPECT_NE(free.out.find("  plainbox: no agent installed"), std::string::npos) << free.out;

  CommandResult json = T({"gpus", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.Describe();
  auto j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << json.out;
  ASSERT_EQ(j["hosts"].size(), 2u) << json.out;
  const auto& gpubox = j["hosts"][0]["host"] == "gpubox" ? j["hosts"][0] : j["hosts"][1];
  const auto& plainbox = j["hosts"][0]["host"] == "gpubox" ? j["hosts"][1] : j["hosts"][0];
  EXPECT_EQ(gpubox["answered"], true) << json.out;
  EXPECT_EQ(gpubox["gpu_state"], "ok") << json.out;
  ASSERT_EQ(gpubox["gpus"].size(), 2u) << json.out;
  EXPECT_EQ(gpubox["gpus"][0]["free"], false);
  EXPECT_EQ(gpubox["gpus"][0]["top_process"]["pid"], ::getpid());
  EXPECT_EQ(gpubox["gpus"][0]["top_process"]["user"], "root");
  EXPECT_EQ(gpubox["gpus"][0]["top_process"]["uid"], 0);
  EXPECT_EQ(gpubox["gpus"][1]["free"], true);
  EXPECT_TRUE(gpubox["gpus"][1]["top_process"].is_null());
  EXPECT_EQ(gpubox["gpus"][1]["memory_used_bytes"], 2u << 20);
  EXPECT_EQ(plainbox["answered"], false) << json.out;
  EXPECT_TRUE(plainbox["gpus"].empty()) << json.out;
  EXPECT_EQ(plainbox["hint"], "tether agent install plainbox, then tether up plainbox --agent");

  // No agent answers: exit status 1, and the line still says what to run.
  ASSERT_TRUE(T({"down", "gpubox"}).ok());
  CommandResult none = T({"gpus"});
  EXPECT_EQ(none.exit_code, 1) << none.Describe();
  EXPECT_NE(none.out.find("tether agent install plainbox"), std::string::npos) << none.out;
  EXPECT_EQ(agent->Terminate(), 0) << AgentLog(dir);
}

// Two hosts whose "agent" is a socket that takes the connection and never answers (a
// wedged agent): each is given up after 5 s, both at once, so the command takes about 5 s,
// not 10, and says why for each.
TEST_F(AgentTest, GpusWaitsAtMostFiveSecondsForAgentsThatDoNotAnswerAllAtOnce) {
  client_config_ = scratch_.File("two_hosts_config");
  ClientConfigOptions two_hosts;
  two_hosts.host = "slow1 slow2";
  ASSERT_TRUE(sshd_.WriteClientConfig(client_config_, two_hosts).ok());
  const std::string socket = scratch_.File("silent.sock");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(socket.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, socket.c_str(), socket.size());
  // Listening, never accepting: a connection completes in the backlog and hears nothing.
  UniqueFd silent(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(silent);
  ASSERT_EQ(::bind(silent.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(silent.get(), 16), 0);
  ::mkdir(scratch_.File("laptop").c_str(), 0700);
  ::mkdir(scratch_.File("laptop/agents").c_str(), 0700);
  for (const char* host : {"slow1", "slow2"}) {
    ASSERT_TRUE(
        WriteFile(scratch_.File(std::string("laptop/agents/") + host + ".json"),
                  nlohmann::json{{"token", std::string(64, 'a')}, {"socket", socket}}.dump(), 0600)
            .ok());
    CommandResult up = T({"up", host, "--agent"});
    ASSERT_TRUE(up.ok()) << up.Describe();
  }

  const auto start = std::chrono::steady_clock::now();
  CommandResult table = T({"gpus"});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(table.exit_code, 1) << table.Describe();
  for (const char* host : {"slow1", "slow2"}) {
    EXPECT_NE(table.out.find(std::string("  ") + host + ": the agent of " + host +
                             " did not answer within 5 s"),
              std::string::npos)
        << table.out;
  }
  EXPECT_GE(took, seconds(5)) << table.out;
  EXPECT_LT(took, seconds(9)) << "the hosts were asked one after the other";
}

}  // namespace
}  // namespace tether::testing
