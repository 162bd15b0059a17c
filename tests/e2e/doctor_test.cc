// End-to-end: tether doctor walks the checklist against a real sshd, and each broken
// piece is named with its evidence; env --local and run --local point local programs at a
// -D port.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "e2e/tether_fixture.h"
#include "net/socket.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

class DoctorTest : public TetherTest {
 protected:
  // The checks of `doctor --json`, by name.
  std::map<std::string, nlohmann::json> Checks(CommandResult* raw = nullptr,
                                               std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"doctor", "testhost", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Tether(args, seconds(90));
    if (raw != nullptr) *raw = r;
    std::map<std::string, nlohmann::json> out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_object()) {
      ADD_FAILURE() << r.Describe();
      return out;
    }
    EXPECT_EQ(j["host"], "testhost");
    EXPECT_EQ(j["ok"], r.exit_code == 0);
    for (const auto& c : j["checks"]) {
      EXPECT_TRUE(c.contains("evidence") && c.contains("fix") && c.contains("status"));
      out[c.value("name", "")] = c;
    }
    return out;
  }
};

TEST_F(DoctorTest, AHealthyHostPassesEveryCheck) {
  HttpServer http("probe target\n");
  uint16_t local = FreeTcpPort();
  uint16_t remote = FreeTcpPort();
  uint16_t proxy = FreeTcpPort();
  ASSERT_TRUE(Tether({"up", "testhost", "-L",
                      std::to_string(local) + ":127.0.0.1:" + std::to_string(http.port()), "-R",
                      std::to_string(remote) + ":127.0.0.1:" + std::to_string(http.port()),
                      "--proxy=" + std::to_string(proxy), "--laptop-network=all"})
                  .ok());
  CommandResult raw;
  auto checks = Checks(&raw, {"--probe", "http://127.0.0.1:" + std::to_string(http.port()) + "/"});
  EXPECT_EQ(raw.exit_code, 0) << raw.out;
  for (const std::string name :
       {"configuration", "host key", "authentication", "daemon", "proxy end to end", "clock"}) {
    EXPECT_EQ(checks[name].value("status", ""), "pass") << name << ": " << checks[name].dump();
  }
  EXPECT_NE(checks["configuration"]["evidence"].get<std::string>().find(sshd_.config_path() + ":"),
            std::string::npos);
  EXPECT_NE(
      checks["host key"]["evidence"].get<std::string>().find(sshd_.host_key_sha256_fingerprint()),
      std::string::npos);
  std::string rfwd = "forward -R server localhost:" + std::to_string(remote) +
                     " -> 127.0.0.1:" + std::to_string(http.port());
  EXPECT_EQ(checks[rfwd].value("status", ""), "pass") << checks[rfwd].dump();
}

TEST_F(DoctorTest, AnotherProgramOnTheForwardsPortIsNamedWithItsPid) {
  HttpServer http;
  uint16_t port = FreeTcpPort();
  ASSERT_TRUE(Tether({"up", "testhost", "-L",
                      std::to_string(port) + ":127.0.0.1:" + std::to_string(http.port())})
                  .ok());
  CommandResult raw;
  auto checks = Checks(&raw);
  std::string name = "forward -L 127.0.0.1:" + std::to_string(port) +
                     " -> 127.0.0.1:" + std::to_string(http.port());
  EXPECT_EQ(checks[name].value("status", ""), "pass") << raw.out;
  // A dev server on [::1] with the same port: "localhost:PORT" may reach it instead.
  auto squat =
      SpawnProcess({"python3", "-c",
                    "import socket,sys,time\n"
                    "s=socket.socket(socket.AF_INET6)\n"
                    "s.bind(('::1', int(sys.argv[1]))); s.listen(); print('ok', flush=True)\n"
                    "time.sleep(60)\n",
                    std::to_string(port)},
                   {}, scratch_.File("squat.out"));
  ASSERT_TRUE(squat.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        return [&] {
          auto t = ReadFile(scratch_.File("squat.out"));
          return t.ok() && *t == "ok\n";
        }();
      },
      seconds(10)));
  checks = Checks(&raw);
  EXPECT_EQ(raw.exit_code, 1);
  EXPECT_EQ(checks[name].value("status", ""), "fail") << raw.out;
  EXPECT_NE(checks[name].value("evidence", "").find("pid " + std::to_string(squat->pid())),
            std::string::npos)
      << checks[name].dump();
}

// Step 4 of the checklist when it matters most: the daemon was killed (kill -9), so there
// is no daemon to ask, and another program took the port of the host's LocalForward line.
TEST_F(DoctorTest, AfterKillNineItSaysTheDaemonDiedShowsItsLogAndNamesWhoTookTheForwardsPort) {
  HttpServer http;
  const uint16_t port = FreeTcpPort();
  const std::string config = scratch_.File("forward.conf");
  ClientConfigOptions options;
  options.extra_lines = {"LocalForward " + std::to_string(port) +
                         " 127.0.0.1:" + std::to_string(http.port())};
  ASSERT_TRUE(sshd_.WriteClientConfig(config, options).ok());
  auto tether = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"-F", config});
    return RunTether(state_.path(), args, seconds(90));
  };
  CommandResult up = tether({"up", "testhost"});
  ASSERT_TRUE(up.ok()) << up.Describe();
  ASSERT_TRUE(PortAccepts(port));
  auto pid_text = ReadFile(StatePath("testhost.pid"));
  ASSERT_TRUE(pid_text.ok());
  const pid_t daemon = static_cast<pid_t>(std::atol(pid_text->c_str()));
  ASSERT_GT(daemon, 0);
  ASSERT_EQ(::kill(daemon, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return !ProcessAlive(daemon); }, seconds(10)));

  // Something else takes the port while no daemon holds it.
  auto squat = SpawnProcess({"python3", "-c",
                             "import socket,sys,time\n"
                             "s=socket.socket()\n"
                             "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
                             "print('ok', flush=True)\n"
                             "time.sleep(120)\n",
                             std::to_string(port)},
                            {}, scratch_.File("squat.out"));
  ASSERT_TRUE(squat.ok());
  ASSERT_TRUE(
      WaitFor([&] { return ReadFileOrEmpty(scratch_.File("squat.out")) == "ok\n"; }, seconds(10)));
  // "pid N (/usr/bin/python3 -c ...": the pid and the command line that holds the port.
  const std::string holder = "pid " + std::to_string(squat->pid()) + " (";
  auto names_holder = [&](const std::string& text) {
    size_t at = text.find(holder);
    return at != std::string::npos && text.find("python3", at) != std::string::npos;
  };

  CommandResult r = tether({"doctor", "testhost", "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.Describe();
  std::map<std::string, nlohmann::json> checks;
  for (const auto& c : j["checks"]) checks[c.value("name", "")] = c;
  EXPECT_EQ(checks["daemon"].value("status", ""), "fail") << r.out;
  EXPECT_NE(checks["daemon"]
                .value("evidence", "")
                .find("the daemon for testhost died (pid " + std::to_string(daemon) + ", started "),
            std::string::npos)
      << checks["daemon"].dump();
  const std::string name = "port " + std::to_string(port) + " (-L " + std::to_string(port) +
                           ":127.0.0.1:" + std::to_string(http.port()) + ")";
  EXPECT_EQ(checks[name].value("status", ""), "fail") << r.out;
  const std::string evidence = checks[name].value("evidence", "");
  EXPECT_TRUE(names_holder(evidence)) << evidence;
  EXPECT_NE(evidence.find("recorded by the daemon, LocalForward in ssh_config"), std::string::npos)
      << evidence;
  EXPECT_NE(checks[name].value("fix", "").find("kill " + std::to_string(squat->pid())),
            std::string::npos);

  const nlohmann::json& dead = j["dead_daemon"];
  ASSERT_TRUE(dead.is_object()) << r.out;
  EXPECT_EQ(dead.value("pid", 0), daemon);
  EXPECT_TRUE(dead["started"].is_number() && dead["last_seen"].is_number()) << dead.dump();
  EXPECT_EQ(dead.value("record", ""), "ok");
  ASSERT_TRUE(dead["log_tail"].is_array() && !dead["log_tail"].empty()) << dead.dump();
  bool logged_up = false;
  for (const auto& line : dead["log_tail"]) {
    logged_up = logged_up || line.get<std::string>().find("[testhost] up:") != std::string::npos;
  }
  EXPECT_TRUE(logged_up) << dead["log_tail"].dump();
  ASSERT_EQ(dead["forwards"].size(), 1u) << dead.dump();
  const nlohmann::json& f = dead["forwards"][0];
  EXPECT_EQ(f.value("port", 0), port);
  EXPECT_EQ(f.value("state", ""), "held");
  EXPECT_TRUE(names_holder(f.value("holder", ""))) << f.dump();
  ASSERT_EQ(f["holders"].size(), 1u);
  EXPECT_EQ(f["holders"][0].value("pid", 0), squat->pid());

  // The same for a person, with the log's last lines under the daemon's check.
  CommandResult text = tether({"doctor", "testhost"});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("FAIL  daemon\n      the daemon for testhost died (pid " +
                          std::to_string(daemon)),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("      the log's last "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("FAIL  " + name + "\n      held by " + holder), std::string::npos)
      << text.out;

  // Once the port is free again, it says so, and a new `up` replaces the record.
  squat->Kill();
  r = tether({"doctor", "testhost", "--json"});
  j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.Describe();
  EXPECT_EQ(j["dead_daemon"]["forwards"][0].value("state", ""), "free") << r.out;
  ASSERT_TRUE(tether({"up", "testhost"}).ok());
  r = tether({"doctor", "testhost", "--json"});
  j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.Describe();
  EXPECT_FALSE(j.contains("dead_daemon")) << r.out;
}

TEST_F(DoctorTest, AHostThatIsNotUpFailsTheDaemonCheckWithTheFix) {
  CommandResult raw;
  auto checks = Checks(&raw);
  EXPECT_EQ(raw.exit_code, 1);
  EXPECT_EQ(checks["daemon"].value("status", ""), "fail");
  EXPECT_EQ(checks["daemon"].value("fix", ""), "tether up testhost");
  EXPECT_EQ(checks["authentication"].value("status", ""), "pass");
}

TEST_F(DoctorTest, AChangedHostKeyFailsTheHostKeyCheckAndNothingElseConnects) {
  std::string config = scratch_.File("mismatch.conf");
  ClientConfigOptions options;
  options.overrides["UserKnownHostsFile"] = sshd_.mismatched_known_hosts_path();
  ASSERT_TRUE(sshd_.WriteClientConfig(config, options).ok());
  const std::string log_before = ReadFileOrEmpty(sshd_.log_path());
  CommandResult r =
      RunTether(state_.path(), {"-F", config, "doctor", "testhost", "--json"}, seconds(60));
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.Describe();
  bool host_key_failed = false;
  for (const auto& c : j["checks"]) {
    if (c["name"] == "host key") {
      host_key_failed = c["status"] == "fail";
      EXPECT_NE(c["fix"].get<std::string>().find("ssh-keygen -R"), std::string::npos) << c.dump();
    }
    // Nothing is tried on a server whose key is wrong: no login, no remote check. What
    // may pass is what needs no login: the configuration, the TCP reach, the laptop's agent.
    std::string name = c.value("name", "");
    bool local = name == "configuration" || name.rfind("reach ", 0) == 0 || name == "ssh-agent";
    if (!local) {
      EXPECT_NE(c["status"], "pass") << "checked on a server with a changed key: " << c.dump();
    }
  }
  EXPECT_TRUE(host_key_failed) << r.out;
  // sshd saw one connection (doctor's own, which stopped at the key) and no login: no
  // second connection, no probe, no key offered.
  std::string log = ReadFileOrEmpty(sshd_.log_path()).substr(log_before.size());
  EXPECT_EQ(CountOccurrences(log, "Connection from"), 1u) << log;
  EXPECT_EQ(CountOccurrences(log, "Accepted"), 0u) << log;
  EXPECT_EQ(CountOccurrences(log, "Failed publickey"), 0u) << log;
}

TEST_F(DoctorTest, ARemoteForwardTheServerRefusedFailsWithTheReasonAndSshdSettings) {
  HttpServer http;
  auto squatter = net::ListenTcp("127.0.0.1", 0);
  ASSERT_TRUE(squatter.ok());
  uint16_t taken = *net::LocalPort((*squatter)[0].get());
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  (void)Tether(
      {"forward", "testhost", "-R",
       "127.0.0.1:" + std::to_string(taken) + ":127.0.0.1:" + std::to_string(http.port())});
  CommandResult raw;
  auto checks = Checks(&raw);
  EXPECT_EQ(raw.exit_code, 1);
  std::string name = "forward -R server 127.0.0.1:" + std::to_string(taken) +
                     " -> 127.0.0.1:" + std::to_string(http.port());
  EXPECT_EQ(checks[name].value("status", ""), "fail") << raw.out;
  EXPECT_NE(checks[name].value("evidence", "").find("retrying"), std::string::npos);
  EXPECT_TRUE(checks.count("sshd settings")) << raw.out;
}

// Another account holds 127.0.0.1:PORT on the server; sshd grants our -R on "localhost"
// on ::1 alone. A connection from the server to 127.0.0.1:PORT reaches that account, not
// the laptop: doctor's end-to-end check of the forward fails naming the port and the
// account, and sends that account nothing.
TEST_F(DoctorTest, ARemoteForwardBesideAnotherAccountsListenerFailsNamingTheAccount) {
  OtherAccount mallory;
  ASSERT_TRUE(mallory.ok()) << mallory.error();
  HttpServer http;
  const uint16_t rport = FreeTcpPort();
  const std::string caught = scratch_.File("caught");
  auto squatter = SpawnProcess(mallory.Catcher({rport}), {}, caught);
  ASSERT_TRUE(squatter.ok()) << squatter.error().message;
  ASSERT_TRUE(WaitFor([&] { return PortAccepts(rport); }, seconds(10)));
  ASSERT_TRUE(Tether({"up", "testhost", "-R",
                      std::to_string(rport) + ":127.0.0.1:" + std::to_string(http.port())})
                  .ok());
  CommandResult raw;
  auto checks = Checks(&raw);
  EXPECT_EQ(raw.exit_code, 1) << raw.out;
  const std::string name = "forward -R server localhost:" + std::to_string(rport) +
                           " -> 127.0.0.1:" + std::to_string(http.port());
  ASSERT_TRUE(checks.count(name)) << raw.out;
  EXPECT_EQ(checks[name].value("status", ""), "fail") << checks[name].dump();
  const std::string held = "port " + std::to_string(rport) + " on the server is held by uid " +
                           std::to_string(mallory.uid()) + " (" + mallory.name() +
                           "), another account";
  EXPECT_NE(checks[name].value("evidence", "").find(held), std::string::npos)
      << checks[name].dump();
  EXPECT_EQ(ReadFileOrEmpty(caught), "");
  squatter->Kill();
}

TEST_F(DoctorTest, TheProxyProbeFailsWhenTheLaptopCannotReachTheTarget) {
  uint16_t proxy = FreeTcpPort();
  ASSERT_TRUE(
      Tether({"up", "testhost", "--proxy=" + std::to_string(proxy), "--laptop-network=all"}).ok());
  CommandResult raw;
  auto checks =
      Checks(&raw, {"--probe", "http://127.0.0.1:" + std::to_string(FreeTcpPort()) + "/"});
  EXPECT_EQ(raw.exit_code, 1);
  EXPECT_EQ(checks["proxy end to end"].value("status", ""), "fail") << raw.out;
}

TEST_F(DoctorTest, EnvAndRunLocalPointLocalProgramsAtTheDynamicForward) {
  HttpServer http("via -D for a local tool\n");
  uint16_t socks = FreeTcpPort();
  ASSERT_TRUE(Tether({"up", "testhost", "-D", std::to_string(socks)}).ok());
  CommandResult env = Tether({"env", "--local", "testhost"});
  ASSERT_TRUE(env.ok()) << env.Describe();
  EXPECT_NE(env.out.find("export ALL_PROXY='socks5h://127.0.0.1:" + std::to_string(socks) + "'"),
            std::string::npos)
      << env.out;
  EXPECT_NE(env.out.find("export https_proxy='http://127.0.0.1:" + std::to_string(socks) + "'"),
            std::string::npos);
  CommandResult run = Tether({"run", "--local", "testhost", "--", "sh", "-c",
                              "curl -sS --max-time 10 --noproxy '' -x \"$https_proxy\" -p "
                              "http://127.0.0.1:" +
                                  std::to_string(http.port()) + "/"});
  EXPECT_EQ(run.out, "via -D for a local tool\n") << run.Describe();
  CommandResult none = Tether({"env", "--local", "nohost"});
  EXPECT_FALSE(none.ok());
}

}  // namespace
}  // namespace tether::testing
