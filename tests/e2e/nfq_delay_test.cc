// The IP-layer delay line (NfqDelayLine, tests/tools/nfq_delay.cc): a link with 50 ms added
// each way is a 100 ms path for ONE end-to-end TCP connection, not two short ones around a
// relay. Plain sockets only; needs root and nfq_delay. Heavy (a 64 MiB transfer).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/netbed.h"

namespace tether::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kOneWay = 50ms;
constexpr double kRttMs = 100;
// The probe's bounds: 100 ms +-20%.
constexpr double kRttLowMs = kRttMs * 0.8;
constexpr double kRttHighMs = kRttMs * 1.2;
constexpr int kProbes = 5;
constexpr uint16_t kPort = 5001;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// CPU seconds (user + system) a process has used so far; -1 if it is gone.
double CpuSeconds(pid_t pid) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text.ok()) return -1;
  size_t close = text->rfind(')');
  if (close == std::string::npos) return -1;
  unsigned long long utime = 0, stime = 0;
  // Fields 14 and 15, counted after the ")" that ends field 2.
  if (std::sscanf(text->c_str() + close + 1,
                  " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) {
    return -1;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// One byte from `from` to `to` and back; the time it took, or -1.
double PingPong(int from, int to) {
  char c = 'p';
  auto start = Clock::now();
  if (::send(from, &c, 1, 0) != 1) return -1;
  for (int fd : {to, from}) {
    pollfd p = {fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) != 1 || ::recv(fd, &c, 1, 0) != 1) return -1;
    if (fd == to && ::send(to, &c, 1, 0) != 1) return -1;
  }
  return MsSince(start);
}

class NfqDelayLineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto net = LaptopServer::Create();
    if (!net.ok()) GTEST_SKIP() << "no emulated network here: " << net.error().ToString();
    if (std::string(NfqDelayBinary()).empty()) {
      GTEST_SKIP() << "nfq_delay was not built (apt-get install libnetfilter-queue-dev)";
    }
    net_ = std::move(*net);
    Status s = net_->AddIpDelay(kOneWay, kOneWay);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }
  void TearDown() override {
    if (!net_) return;
    for (NfqDelayLine* line : {net_->to_server_delay.get(), net_->to_laptop_delay.get()}) {
      if (line == nullptr) continue;
      line->Stop();  // its counters go to the log on exit
      std::cerr << "nfq_delay log: " << line->LogTail(1000);
    }
  }

  std::unique_ptr<LaptopServer> net_;
};

TEST_F(NfqDelayLineTest, OneTcpConnectionSeesTheRoundTripAndCarries64MiBIntact) {
  // Idle, the lines sleep in poll (no timer armed, nothing queued).
  const double idle_before =
      CpuSeconds(net_->to_server_delay->pid()) + CpuSeconds(net_->to_laptop_delay->pid());
  ASSERT_GE(idle_before, 0);
  std::this_thread::sleep_for(1s);
  const double idle_cpu = CpuSeconds(net_->to_server_delay->pid()) +
                          CpuSeconds(net_->to_laptop_delay->pid()) - idle_before;
  EXPECT_LT(idle_cpu, 0.05) << "an idle nfq_delay spins";

  auto listener = ListenTcpIn(net_->server, net_->server_ip, kPort);
  ASSERT_TRUE(listener.ok()) << listener.error().ToString();

  // The probe: a TCP handshake takes one round trip (SYN out, SYN-ACK back), and so does one
  // byte echoed over an open connection. A relay that ends TCP answers the SYN at once.
  std::vector<double> connects, echoes;
  for (int i = 0; i < kProbes; ++i) {
    auto start = Clock::now();
    auto client = net_->laptop.ConnectTcp(net_->server_ip, kPort, 5s);
    const double ms = MsSince(start);
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    connects.push_back(ms);
    auto server = AcceptTcp(listener->get(), 5s);
    ASSERT_TRUE(server.ok()) << server.error().ToString();
    echoes.push_back(PingPong(client->get(), server->get()));
  }
  const double connect_ms = Median(connects);
  const double echo_ms = Median(echoes);
  std::cout << "probe RTT (median of " << kProbes << "): TCP connect " << connect_ms
            << " ms, 1-byte echo " << echo_ms << " ms (min "
            << *std::min_element(echoes.begin(), echoes.end()) << ", max "
            << *std::max_element(echoes.begin(), echoes.end()) << ")\n";
  EXPECT_GE(connect_ms, kRttLowMs);
  EXPECT_LE(connect_ms, kRttHighMs);
  EXPECT_GE(echo_ms, kRttLowMs);
  EXPECT_LE(echo_ms, kRttHighMs);

  // 64 MiB over one connection, laptop to server.
  constexpr uint64_t kBytes = uint64_t{64} << 20;
  auto client = net_->laptop.ConnectTcp(net_->server_ip, kPort, 5s);
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  auto server = AcceptTcp(listener->get(), 5s);
  ASSERT_TRUE(server.ok()) << server.error().ToString();
  const pid_t laptop_line = net_->to_server_delay->pid();
  const pid_t server_line = net_->to_laptop_delay->pid();
  const double cpu_before = CpuSeconds(laptop_line) + CpuSeconds(server_line);
  auto start = Clock::now();
  const int client_fd = client->get();
  auto sender = std::async(std::launch::async, [client_fd, kBytes] {
    auto sent = SendAllAndHash(client_fd, kBytes, /*seed=*/11, 120s);
    ::shutdown(client_fd, SHUT_WR);
    return sent;
  });
  auto got = ReceiveAllAndHash(server->get(), 120s);
  const double seconds = MsSince(start) / 1000;
  auto sent = sender.get();
  const double cpu = CpuSeconds(laptop_line) + CpuSeconds(server_line) - cpu_before;
  ASSERT_TRUE(sent.ok()) << sent.error().ToString();
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->bytes, kBytes);
  EXPECT_EQ(got->sha256_hex, sent->sha256_hex);

  tcp_info info{};
  socklen_t len = sizeof info;
  ASSERT_EQ(::getsockopt(client_fd, IPPROTO_TCP, TCP_INFO, &info, &len), 0);
  const double mbit = static_cast<double>(kBytes) * 8 / 1e6 / seconds;
  std::cout << "64 MiB over one TCP connection at " << kRttMs << " ms RTT: " << seconds << " s, "
            << mbit << " Mbit/s; sender's tcpi_rtt " << info.tcpi_rtt / 1000.0
            << " ms, retransmits " << info.tcpi_total_retrans << ", cwnd " << info.tcpi_snd_cwnd
            << "; nfq_delay CPU (both ends) " << cpu << " s (" << 100 * cpu / seconds
            << "% of one core)\n";
  EXPECT_GT(mbit, 50);
  // The sender's own TCP measured the whole path: end to end, not a local hop.
  EXPECT_GE(info.tcpi_rtt / 1000.0, kRttLowMs);
  EXPECT_LE(info.tcpi_rtt / 1000.0, 3 * kRttMs);
}

// No root needed: the flags are checked before anything is bound.
TEST(NfqDelayArgs, RefusesMissingAndBadFlagsWithUsage) {
  const std::string bin = NfqDelayBinary();
  if (bin.empty()) GTEST_SKIP() << "nfq_delay was not built";
  for (const auto& args :
       std::vector<std::vector<std::string>>{{},
                                             {"--queue", "0"},
                                             {"--queue", "x", "--delay-ms", "50"},
                                             {"--queue", "0", "--delay-ms", "-1"},
                                             {"--queue", "70000", "--delay-ms", "50"},
                                             {"--queue", "0", "--delay-ms", "50", "--bogus", "1"},
                                             {"--queue", "0", "--delay-ms"}}) {
    std::vector<std::string> argv = {bin};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = RunCommand(argv, {}, 5s);
    EXPECT_EQ(r.exit_code, 2) << r.Describe();
    EXPECT_NE(r.err.find("usage: nfq_delay"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace tether::testing
