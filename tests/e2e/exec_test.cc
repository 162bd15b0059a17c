// End-to-end: commands over the daemon's one connection. tether exec/ssh/run and stock
// ssh, scp and rsync through HOST.mux (OpenSSH's mux protocol), against a real sshd.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>

#include <cstring>

#include "control/mux_codec.h"
#include "e2e/tether_fixture.h"
#include "e2e/tmux.h"
#include "net/socket.h"

namespace tether::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

using ExecTest = TetherTest;

TEST_F(ExecTest, ExitCodesAndSignalsPassThrough) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  CommandResult r = Tether({"exec", "testhost", "--", "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.Describe();
  r = Tether({"exec", "testhost", "true"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  r = Tether({"exec", "testhost", "kill -TERM $$"});
  EXPECT_EQ(r.exit_code, 128 + 15) << r.Describe();
  r = Tether({"exec", "testhost", "kill -9 $$"});
  EXPECT_EQ(r.exit_code, 128 + 9) << r.Describe();
  // The command line is the arguments joined by spaces, run by the user's shell (as ssh).
  r = Tether({"exec", "testhost", "echo", "a  b", "$((6*7))"});
  EXPECT_EQ(r.out, "a b 42\n") << r.Describe();
}

TEST_F(ExecTest, StartsTheDaemonWhenNoneRuns) {
  CommandResult r = Tether({"exec", "testhost", "echo", "started"});
  EXPECT_EQ(r.out, "started\n") << r.Describe();  // the daemon's words went to stderr
  EXPECT_EQ(Host()["state"], "up");
}

TEST_F(ExecTest, StdoutAndStderrStayApart) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  CommandResult r = Tether({"exec", "testhost", "echo to-out; echo to-err >&2; echo more-out"});
  EXPECT_EQ(r.out, "to-out\nmore-out\n");
  EXPECT_NE(r.err.find("to-err\n"), std::string::npos);
  EXPECT_EQ(r.err.find("to-out"), std::string::npos);
}

TEST_F(ExecTest, HundredMegabytesThroughStdinAndStdoutArriveByteIdentical) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  std::string data = PatternBytes(5, 100u << 20);
  CommandResult r = RunTether(state_.path(), {"-F", sshd_.config_path(), "exec", "testhost", "cat"},
                              seconds(120), {}, data);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.size(), data.size());
  EXPECT_EQ(Sha256Hex(r.out), Sha256Hex(data));
  // And the other way round, from the server.
  r = Tether({"exec", "testhost", "head -c 50000000 /dev/zero | tr '\\0' x"}, seconds(120));
  EXPECT_EQ(r.out.size(), 50000000u);
  EXPECT_EQ(r.out.find_first_not_of('x'), std::string::npos);
}

TEST_F(ExecTest, StockSshScpAndRsyncRideTheConnection) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  size_t connections_before = Host().value("reconnects", 0);
  CommandResult r = Ssh({"testhost", "echo", "through-the-mux"});
  EXPECT_EQ(r.out, "through-the-mux\n") << r.Describe();
  r = Ssh({"testhost", "exit 3"});
  EXPECT_EQ(r.exit_code, 3);

  std::string src = scratch_.File("payload.bin");
  ASSERT_TRUE(WriteFile(src, PatternBytes(9, 3u << 20)).ok());
  std::string dst = scratch_.File("copied-by-scp.bin");
  r = RunCommand({"scp", "-q", "-F", sshd_.config_path(), "-o", "ControlMaster=no", "-o",
                  "ControlPath=" + MuxPath(), src, "testhost:" + dst},
                 {}, seconds(60));
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(Sha256Hex(ReadFile(dst).value()), Sha256Hex(ReadFile(src).value()));

  std::string rsync_dst = scratch_.File("copied-by-rsync.bin");
  r = RunCommand(
      {"rsync", "-e", std::string(TetherBinary()) + " -F " + sshd_.config_path() + " ssh", src,
       "testhost:" + rsync_dst},
      {{"TETHER_STATE_DIR", state_.path()}}, seconds(60));
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(Sha256Hex(ReadFile(rsync_dst).value()), Sha256Hex(ReadFile(src).value()));

  // Everything went over the daemon's connection: sshd saw one login.
  std::string log = ReadFile(sshd_.log_path()).value();
  EXPECT_EQ(CountOccurrences(log, "Accepted publickey"), 1u) << log;
  EXPECT_EQ(Host().value("reconnects", 0), connections_before);
}

TEST_F(ExecTest, GitOverTetherSsh) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  auto readme = GitPushAndClone(scratch_.path(),
                                std::string(TetherBinary()) + " -F " + sshd_.config_path() + " ssh",
                                {{"TETHER_STATE_DIR", state_.path()}});
  ASSERT_TRUE(readme.ok()) << readme.error().ToString();
  EXPECT_EQ(*readme, "hello\n");
}

TEST_F(ExecTest, SshDashOCheckForwardCancelAndExit) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  int pid = Host()["pid"];
  CommandResult r = Ssh({"-O", "check", "testhost"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_NE(r.err.find("pid=" + std::to_string(pid)), std::string::npos) << r.err;

  HttpServer http("forwarded by ssh -O\n");
  uint16_t local = FreeTcpPort();
  std::string spec = std::to_string(local) + ":127.0.0.1:" + std::to_string(http.port());
  r = Ssh({"-O", "forward", "-L", spec, "testhost"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto got = HttpGet(local);
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  EXPECT_EQ(got->body, "forwarded by ssh -O\n");
  r = Ssh({"-O", "cancel", "-L", spec, "testhost"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_FALSE(PortAccepts(local));

  // ssh -W through the daemon: stdio to a port on the server's side.
  r = Ssh({"-W", "127.0.0.1:" + std::to_string(http.port()), "testhost"}, "GET / HTTP/1.0\r\n\r\n");
  EXPECT_NE(r.out.find("forwarded by ssh -O"), std::string::npos) << r.Describe();

  r = Ssh({"-O", "exit", "testhost"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(pid); }, seconds(10)));
}

TEST_F(ExecTest, GarbageOnTheMuxSocketGetsAnErrorAndTheDaemonLivesOn) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  // Sends `bytes`, then (unless `keep_open`) ends its side; everything the daemon sent
  // until it closed, or "error: ..." if it kept the connection past 10 s.
  auto raw = [&](const std::string& bytes, bool keep_open = false) {
    auto fd = net::ConnectUnix(MuxPath());
    if (!fd.ok()) return std::string("connect failed");
    (void)net::SetNonBlocking(fd->get(), false);
    (void)SendAll(fd->get(), bytes, seconds(5));
    if (!keep_open) ::shutdown(fd->get(), SHUT_WR);
    auto answer = ReceiveAll(fd->get(), seconds(10));
    return answer.ok() ? *answer : "error: " + answer.error().message;
  };
  auto u32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  std::string hello = u32(8) + u32(1) + u32(4);
  // Hello from the server arrives first, whatever we send.
  EXPECT_EQ(raw("garbage, not a packet").substr(0, 12), u32(8) + u32(1) + u32(4));
  // A huge length: the client is dropped at once, its hello all it got (the socket is
  // left open on this side, so only the daemon can have closed it).
  EXPECT_EQ(raw(u32(0xffffffff) + "x", /*keep_open=*/true), hello);
  // A well-formed unknown request gets MUX_S_FAILURE naming it.
  std::string unknown = hello + u32(8) + u32(0x10000077) + u32(42);
  std::string answer = raw(unknown);
  EXPECT_NE(answer.find(u32(0x80000003) + u32(42)), std::string::npos);
  EXPECT_NE(answer.find("unsupported request 0x10000077"), std::string::npos);
  // A new-session request whose descriptors never come, and a truncated one.
  // Neither is left hanging once the client has gone.
  EXPECT_EQ(raw(hello + u32(12) + u32(0x10000002) + u32(7) + u32(0)).rfind("error:", 0),
            std::string::npos);
  EXPECT_EQ(raw(hello + u32(200) + u32(0x10000002)).rfind("error:", 0), std::string::npos);
  CommandResult r = Tether({"exec", "testhost", "echo", "still here"});
  EXPECT_EQ(r.out, "still here\n") << r.Describe();
}

// Passes `fd` over a unix socket as ssh's mux client does: one byte with SCM_RIGHTS.
bool SendFd(int socket, int fd) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  return ::sendmsg(socket, &msg, MSG_NOSIGNAL) == 1;
}

// The daemon tells the client its command started, the send fails (the client shut its
// reading side), the client is dropped and its session ended: all inside the session's
// own call. Under ASan that was a use-after-free; it must be an ordinary goodbye.
TEST_F(ExecTest, AClientThatStopsReadingAsItsSessionStartsLeavesTheDaemonServing) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  int pid = Host()["pid"];
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto fd = net::ConnectUnix(MuxPath());
    ASSERT_TRUE(fd.ok()) << fd.error().ToString();
    auto hello =
        ReceiveUntil(fd->get(), control::mux::FramePacket(control::mux::EncodeHello()), seconds(5));
    ASSERT_TRUE(hello.ok()) << hello.error().ToString();
    control::mux::NewSession request;
    request.request_id = 1;
    request.command = "echo never-read";
    std::string packets = control::mux::FramePacket(control::mux::EncodeClientHello()) +
                          control::mux::FramePacket(control::mux::EncodeNewSession(request));
    ASSERT_TRUE(SendAll(fd->get(), packets, seconds(5)).ok());
    UniqueFd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    UniqueFd null_out(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(SendFd(fd->get(), null_in.get()));
    ASSERT_TRUE(SendFd(fd->get(), null_out.get()));
    ASSERT_TRUE(SendFd(fd->get(), null_out.get()));
    ASSERT_EQ(::shutdown(fd->get(), SHUT_RD), 0);
    // The session opens a round trip later, and its answer fails then.
    std::this_thread::sleep_for(milliseconds(500));
    ASSERT_TRUE(ProcessAlive(pid)) << "the daemon died on attempt " << attempt;
  }
  CommandResult r = Tether({"exec", "testhost", "echo", "still here"});
  EXPECT_EQ(r.out, "still here\n") << r.Describe();
  EXPECT_EQ(Host()["pid"], pid);
}

TEST_F(ExecTest, APtySessionThroughTmuxFollowsTheWindowSize) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  Tmux tmux(scratch_.File("tmux.sock"));
  ASSERT_TRUE(tmux.Start("env TETHER_STATE_DIR=" + state_.path() + " " + TetherBinary() + " -F " +
                         sshd_.config_path() + " ssh testhost; echo LOCAL-EXIT=$?; sleep 60"));
  ASSERT_TRUE(tmux.Type("tty; stty size"));
  ASSERT_TRUE(tmux.WaitForText("/dev/pts/", seconds(15))) << tmux.Screen();
  ASSERT_TRUE(tmux.WaitForText("50 200", seconds(5))) << tmux.Screen();
  ASSERT_TRUE(tmux.Resize(120, 40));
  ASSERT_TRUE(tmux.Type("stty size"));
  ASSERT_TRUE(tmux.WaitForText("40 120", seconds(10))) << tmux.Screen();
  ASSERT_TRUE(tmux.Type("exit 5"));
  ASSERT_TRUE(tmux.WaitForText("LOCAL-EXIT=5", seconds(10))) << tmux.Screen();
  // Raw mode was undone: the local shell echoes what is typed again.
  ASSERT_TRUE(tmux.Type("echo cooked-again"));
  EXPECT_TRUE(tmux.WaitForText("cooked-again", seconds(5))) << tmux.Screen();
}

TEST_F(ExecTest, RunSetsTheProxyVariablesWithoutShowingTheTokenInTheCommandLine) {
  HttpServer internet("fetched through the laptop\n");
  uint16_t port = FreeTcpPort();
  ASSERT_TRUE(
      Tether({"up", "testhost", "--proxy=" + std::to_string(port), "--laptop-network=all"}).ok());
  CommandResult r = Tether({"run", "testhost", "--",
                            "curl -sS --max-time 10 --noproxy '' -x \"$http_proxy\" "
                            "http://127.0.0.1:" +
                                std::to_string(internet.port()) +
                                "/; "
                                "ps -eo args | grep -c [_]_tether_proxy_env=; "
                                "ps -eo args | grep -c '[t]ether-[0-9a-f]\\{8\\}:'"});
  EXPECT_EQ(r.out, "fetched through the laptop\n0\n0\n") << r.Describe();
  // stdin still reaches the command after the variables.
  r = RunTether(state_.path(), {"-F", sshd_.config_path(), "run", "testhost", "--", "cat"},
                seconds(30), {}, "piped in\n");
  EXPECT_EQ(r.out, "piped in\n") << r.Describe();
  r = Tether({"run", "testhost", "--", "exit 4"});
  EXPECT_EQ(r.exit_code, 4);
}

// sshd refuses an eleventh session channel per connection (MaxSessions 10): the daemon
// opens further connections and spreads the sessions over them.
class MaxSessionsTest : public ExecTest {
 protected:
  void SetUp() override {
    sshd_options_.extra_config = {"MaxSessions 10", "MaxStartups 100:30:200"};
    ExecTest::SetUp();
  }
};

TEST_F(MaxSessionsTest, HundredCommandsAtOnceAllSucceed) {
  ASSERT_TRUE(Tether({"up", "testhost"}).ok());
  constexpr int kCommands = 100;
  std::vector<Child> children;
  for (int i = 0; i < kCommands; ++i) {
    auto child = SpawnProcess({TetherBinary(), "-F", sshd_.config_path(), "exec", "testhost",
                               "sleep 2; echo done-" + std::to_string(i)},
                              {{"TETHER_STATE_DIR", state_.path()}},
                              scratch_.File("exec-" + std::to_string(i) + ".out"));
    ASSERT_TRUE(child.ok()) << child.error().ToString();
    children.push_back(std::move(*child));
  }
  int ok = 0;
  for (int i = 0; i < kCommands; ++i) {
    ASSERT_TRUE(WaitFor([&] { return !children[i].Running(); }, seconds(90))) << i;
    std::string out = ReadFile(scratch_.File("exec-" + std::to_string(i) + ".out")).value();
    if (children[i].exit_code() == 0 &&
        out.find("done-" + std::to_string(i) + "\n") != std::string::npos) {
      ++ok;
    } else {
      ADD_FAILURE() << "command " << i << " exit " << children[i].exit_code().value_or(-1) << ": "
                    << out;
    }
  }
  EXPECT_EQ(ok, kCommands);
  std::string log = ReadFile(state_.File("testhost.log")).value();
  EXPECT_NE(log.find("allows 10 sessions per connection"), std::string::npos);
}

}  // namespace
}  // namespace tether::testing