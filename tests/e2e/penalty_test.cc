// End-to-end against OpenSSH 9.8+'s PerSourcePenalties (on by default): every connection
// that closes without authenticating costs the client's address time (1 s by default, 5 s
// for a failed login), and once more than 15 s add up sshd drops the address's
// connections. A laptop whose tether probes the server through every outage, or whose
// doctor knocks before it logs in, would lock itself out. These tests run only against
// such an sshd (TETHER_TEST_SSHD=$(scripts/openssh10.sh)); with Debian 12's 9.2 they skip.
//
// sshd logs every penalty at LogLevel VERBOSE (the test bed's): "new ipv4 127.0.0.1/32
// deferred penalty of 1 seconds for penalty: connections without attempting
// authentication"; and each connection it refuses: "drop connection #N from [...]".
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "e2e/netbed.h"
#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::seconds;

// sshd reaps a pre-auth session process and books its penalty within this.
constexpr milliseconds kPenaltyBooked = 3000ms;

// Why the running sshd has no PerSourcePenalties, or "" if it has (OpenSSH 9.8 or later).
std::string WhyNoPenalties() {
  auto version = SshdVersion();
  if (!version.ok()) return version.error().ToString();
  int major = 0, minor = 0;
  if (std::sscanf(version->c_str(), "OpenSSH_%d.%d", &major, &minor) != 2) {
    return "cannot read the version in " + *version;
  }
  if (major > 9 || (major == 9 && minor >= 8)) return "";
  return SshdBinary() + " is " + *version +
         ", without PerSourcePenalties (9.8+): set TETHER_TEST_SSHD=$(scripts/openssh10.sh)";
}

// sshd's log; an unreadable log fails the test (no penalty line in no log proves nothing).
std::string ReadLog(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    ADD_FAILURE() << text.error().ToString();
    return "";
  }
  return *text;
}

// Lines of `text` that speak of penalties or refusals.
std::string PenaltyLines(const std::string& text) {
  std::string lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.find("penalty") != std::string::npos ||
        line.find("drop connection") != std::string::npos) {
      lines += line + "\n";
    }
    start = end + 1;
  }
  return lines;
}

class PerSourcePenaltiesTest : public TetherTest {
 protected:
  void SetUp() override {
    if (std::string why = WhyNoPenalties(); !why.empty()) GTEST_SKIP() << why;
    TetherTest::SetUp();
  }
  std::string SshdLog() const { return ReadLog(sshd_.log_path()); }
};

// What every fix below is about, measured: a TCP connect that closes before it even sends
// the SSH banner (what a reachability probe or a port check does) is penalised like any
// other connection without authentication, and enough of them in a row lock the address out.
TEST_F(PerSourcePenaltiesTest, BareConnectsThatCloseBeforeTheBannerGetTheAddressRefused) {
  auto probe = ConnectTcp(sshd_.port());
  ASSERT_TRUE(probe.ok()) << probe.error().ToString();
  probe->Reset();
  ASSERT_TRUE(WaitFor([&] { return PenaltyLines(SshdLog()).find("penalty") != std::string::npos; },
                      kPenaltyBooked))
      << "one bare connect was not penalised:\n"
      << sshd_.LogTail();
  std::cerr << "one bare connect: " << PenaltyLines(SshdLog());

  // 1 s each, refused past 15 s: twenty in a row are enough.
  for (int i = 0; i < 20; ++i) {
    auto c = ConnectTcp(sshd_.port());
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    c->Reset();
    std::this_thread::sleep_for(50ms);  // one at a time: each is reaped and booked
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        RunCommand({"ssh", "-F", sshd_.config_path(), "-o", "ConnectTimeout=5", "testhost", "true"},
                   {}, seconds(10));
        return SshdLog().find("drop connection") != std::string::npos;
      },
      seconds(10)))
      << "twenty bare connects did not get the address refused:\n"
      << sshd_.LogTail();
  CommandResult login = RunCommand({"ssh", "-F", sshd_.config_path(), "testhost", "true"});
  EXPECT_FALSE(login.ok()) << "a penalised address logged in";
}

// The daemon's outages and probes, and doctor, with the server's default penalties.
class PerSourcePenaltiesNetSlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = WhyNoPenalties(); !why.empty()) GTEST_SKIP() << why;
    auto net = LaptopServer::Create();
    if (!net.ok()) GTEST_SKIP() << net.error().ToString();
    net_ = std::move(*net);
    Status s = sshd_.Start(net_->server, net_->server_ip);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
    // A dead link noticed in ~2 s rather than 6: more outages in the test's time.
    config_ = scratch_.File("ssh_config");
    ClientConfigOptions options;
    options.overrides = {{"ServerAliveInterval", "1"}, {"ServerAliveCountMax", "2"}};
    s = sshd_.WriteClientConfig(config_, options);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }
  void TearDown() override {
    if (!net_) return;
    if (HasFailure()) {
      PrintDaemonLogTail(state_.path());
      std::cerr << "sshd log (tail):\n" << sshd_.LogTail(8000);
    }
    StopAllTethers(state_.path());
    sshd_.Stop();
  }
  CommandResult Tether(const std::vector<std::string>& args, milliseconds timeout = 30s) {
    std::vector<std::string> argv = {"-F", config_};
    argv.insert(argv.end(), args.begin(), args.end());
    return net_->laptop.RunTether(state_.path(), argv, timeout);
  }
  nlohmann::json Host() {
    auto j = nlohmann::json::parse(Tether({"status", "--json"}, 10s).out, nullptr, false);
    if (!j.is_object() || j["hosts"].empty()) return nlohmann::json::object();
    return j["hosts"][0];
  }
  std::string SshdLog() const { return ReadLog(sshd_.log_path()); }

  std::unique_ptr<LaptopServer> net_;
  ServerSshd sshd_;
  TempDir state_;
  TempDir scratch_;
  std::string config_;
};

TEST_F(PerSourcePenaltiesNetSlowTest, OutagesReconnectProbesAndDoctorNeverGetTheLaptopRefused) {
  ASSERT_TRUE(Tether({"up", "testhost"}, 60s).ok()) << sshd_.LogTail();
  // Black holes: the keepalive calls the link dead, reconnects time out, the reachability
  // probe knocks every second until the path is back, and then logs in on what it found.
  constexpr int kBlackholes = 4;
  for (int i = 0; i < kBlackholes; ++i) {
    ASSERT_TRUE(net_->link.Blackhole(true).ok());
    ASSERT_TRUE(WaitFor([&] { return Host().value("state", "") != "up"; }, 15s))
        << "outage " << i << " not noticed: " << Host().dump();
    std::this_thread::sleep_for(3s);  // a few probes and a failed reconnect into the void
    ASSERT_TRUE(net_->link.Blackhole(false).ok());
    ASSERT_TRUE(WaitFor([&] { return Host().value("state", "") == "up"; }, 20s))
        << "outage " << i << ": " << Host().dump();
  }
  // The server drops every connection (sshd restarted with KillMode=process): an
  // immediate reconnect.
  constexpr int kDrops = 3;
  for (int i = 0; i < kDrops; ++i) {
    int before = Host().value("reconnects", 0);
    sshd_.DropConnections();
    ASSERT_TRUE(WaitFor([&] { return Host().value("reconnects", 0) > before; }, 20s))
        << "drop " << i << ": " << Host().dump();
  }
  // Doctor, several times, as someone troubleshooting would.
  constexpr int kDoctorRuns = 5;
  for (int i = 0; i < kDoctorRuns; ++i) {
    CommandResult doctor = Tether({"doctor", "testhost"}, 60s);
    EXPECT_NE(doctor.out.find("logged in"), std::string::npos) << doctor.Describe();
  }
  std::this_thread::sleep_for(kPenaltyBooked);

  std::string log = SshdLog();
  EXPECT_EQ(PenaltyLines(log), "") << "sshd penalised or refused the laptop";
  // Every reconnect and every doctor run was a login of its own: the log was watched.
  EXPECT_GE(CountOccurrences(log, "Accepted publickey"),
            size_t{1 + kBlackholes + kDrops + kDoctorRuns})
      << sshd_.LogTail(8000);
  EXPECT_EQ(Host().value("reconnects", 0), kBlackholes + kDrops) << Host().dump();
  // And a fresh login from the laptop still works.
  CommandResult login = net_->laptop.Run({"ssh", "-F", config_, "testhost", "echo", "in"});
  EXPECT_EQ(login.out, "in\n") << login.Describe();
  CommandResult exec = Tether({"exec", "testhost", "--", "echo", "still"});
  EXPECT_EQ(exec.out, "still\n") << exec.Describe();
}

}  // namespace
}  // namespace tether::testing
