#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tether::net {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

bool IsNonBlocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }
bool IsCloseOnExec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// A loopback port that nothing listens on (it was free a moment ago).
uint16_t ClosedPort() {
  auto fds = ListenTcp("", 0);
  EXPECT_TRUE(fds.ok());
  if (!fds.ok()) return 0;
  auto port = LocalPort((*fds)[0].get());
  EXPECT_TRUE(port.ok());
  return port.ok() ? *port : 0;
}

TEST(ListenTcp, WithNoHostListensOnLoopbackOnly) {
  auto fds = ListenTcp("", 0);
  ASSERT_TRUE(fds.ok()) << fds.error().ToString();
  ASSERT_EQ(fds->size(), 1u);
  const int fd = (*fds)[0].get();

  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  ASSERT_EQ(ss.ss_family, AF_INET);
  const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
  EXPECT_EQ(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
  EXPECT_NE(ntohs(in->sin_port), 0);

  auto port = LocalPort(fd);
  ASSERT_TRUE(port.ok()) << port.error().ToString();
  EXPECT_EQ(*port, ntohs(in->sin_port));
  EXPECT_TRUE(IsNonBlocking(fd));
  EXPECT_TRUE(IsCloseOnExec(fd));
}

TEST(ListenTcp, NamesThePortThatIsAlreadyInUse) {
  auto first = ListenTcp("", 0);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  auto port = LocalPort((*first)[0].get());
  ASSERT_TRUE(port.ok());
  const std::string p = std::to_string(*port);

  auto second = ListenTcp("", *port);

  ASSERT_FALSE(second.ok()) << "listened twice on port " << p;
  EXPECT_EQ(second.error().step, "listen");
  EXPECT_EQ(second.error().code, ErrorCode::kListen);
  EXPECT_NE(second.error().message.find("port " + p + " is already in use"), std::string::npos)
      << second.error().ToString();
  EXPECT_NE(second.error().message.find("127.0.0.1:" + p), std::string::npos)
      << second.error().ToString();
  EXPECT_FALSE(second.error().hint.empty());
  EXPECT_EQ(second.error().sys_errno, EADDRINUSE);
}

class UnixSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-socket-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/test.sock";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Whether a connection to `path_` gets through to `listener`.
  static void ExpectAccepts(int listener, const std::string& path) {
    auto client = ConnectUnix(path);
    ASSERT_TRUE(client.ok()) << client.error().ToString();
    auto conn = Accept(listener);
    ASSERT_TRUE(conn.ok()) << conn.error().ToString();
    EXPECT_TRUE(conn->valid());
  }

  std::string dir_;
  std::string path_;
};

TEST_F(UnixSocketTest, ListensOnASocketOnlyItsOwnerCanUse) {
  auto fd = ListenUnix(path_);
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();

  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(IsNonBlocking(fd->get()));
  EXPECT_TRUE(IsCloseOnExec(fd->get()));
  ExpectAccepts(fd->get(), path_);
}

TEST_F(UnixSocketTest, AcceptReturnsNothingWhenNoConnectionIsPending) {
  auto fd = ListenUnix(path_);
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  auto conn = Accept(fd->get());
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  EXPECT_FALSE(conn->valid());
}

TEST_F(UnixSocketTest, AcceptedConnectionsAreNonBlockingAndCloseOnExec) {
  auto fd = ListenUnix(path_);
  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  auto client = ConnectUnix(path_);
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  EXPECT_FALSE(IsNonBlocking(client->get()));
  EXPECT_TRUE(IsCloseOnExec(client->get()));

  auto conn = Accept(fd->get());
  ASSERT_TRUE(conn.ok() && conn->valid());
  EXPECT_TRUE(IsNonBlocking(conn->get()));
  EXPECT_TRUE(IsCloseOnExec(conn->get()));
}

TEST_F(UnixSocketTest, ReplacesAStaleSocketNobodyAcceptsOn) {
  {
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM, 0));
    ASSERT_TRUE(stale.valid());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(stale.get(), 1), 0);
  }  // closed: the file stays, nobody accepts
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  ASSERT_TRUE(S_ISSOCK(st.st_mode));

  auto fd = ListenUnix(path_);

  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  ExpectAccepts(fd->get(), path_);
}

TEST_F(UnixSocketTest, RefusesAPathThatIsARegularFile) {
  std::ofstream(path_) << "keep me";

  auto fd = ListenUnix(path_);

  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().step, "listen");
  EXPECT_NE(fd.error().message.find(path_), std::string::npos) << fd.error().ToString();
  EXPECT_FALSE(fd.error().hint.empty());
  std::ifstream in(path_);
  std::stringstream content;
  content << in.rdbuf();
  EXPECT_EQ(content.str(), "keep me");
}

TEST_F(UnixSocketTest, RefusesASocketSomeoneListensOn) {
  auto first = ListenUnix(path_);
  ASSERT_TRUE(first.ok()) << first.error().ToString();

  auto second = ListenUnix(path_);

  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().step, "listen");
  EXPECT_NE(second.error().message.find("already in use"), std::string::npos)
      << second.error().ToString();
  EXPECT_FALSE(second.error().hint.empty());
  // The first listener still owns the path.
  auto probe = Accept(first->get());  // the refused listener's own probe
  ASSERT_TRUE(probe.ok());
  ExpectAccepts(first->get(), path_);
}

TEST(ConnectTcp, ReportsAClosedPortAsRefused) {
  const uint16_t port = ClosedPort();
  ASSERT_NE(port, 0);
  const std::string where = "127.0.0.1:" + std::to_string(port);

  auto fd = ConnectTcp("127.0.0.1", port, 2s);

  ASSERT_FALSE(fd.ok()) << "connected to " << where;
  EXPECT_EQ(fd.error().step, "connect");
  EXPECT_EQ(fd.error().code, ErrorCode::kConnect);
  EXPECT_EQ(fd.error().sys_errno, ECONNREFUSED);
  EXPECT_NE(fd.error().message.find(where), std::string::npos) << fd.error().ToString();
  EXPECT_NE(fd.error().message.find(std::strerror(ECONNREFUSED)), std::string::npos)
      << fd.error().ToString();
  EXPECT_NE(fd.error().hint.find("nothing listens on " + where), std::string::npos)
      << fd.error().ToString();
}

TEST(ConnectTcp, ReportsANameThatDoesNotResolve) {
  auto fd = ConnectTcp("no-such-host.invalid", 22, 2s);

  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().step, "resolve");
  EXPECT_EQ(fd.error().code, ErrorCode::kResolve);
  EXPECT_NE(fd.error().message.find("no-such-host.invalid"), std::string::npos)
      << fd.error().ToString();
  EXPECT_FALSE(fd.error().hint.empty());
}

TEST(ConnectTcp, ConnectsToAListenerAndReturnsABlockingDescriptor) {
  auto listener = ListenTcp("", 0);
  ASSERT_TRUE(listener.ok()) << listener.error().ToString();
  auto port = LocalPort((*listener)[0].get());
  ASSERT_TRUE(port.ok());

  auto fd = ConnectTcp("127.0.0.1", *port, 2s);

  ASSERT_TRUE(fd.ok()) << fd.error().ToString();
  EXPECT_FALSE(IsNonBlocking(fd->get()));
  EXPECT_TRUE(IsCloseOnExec(fd->get()));
  auto conn = Accept((*listener)[0].get());
  ASSERT_TRUE(conn.ok());
  EXPECT_TRUE(conn->valid());
}

struct HostPortCase {
  const char* host;
  uint16_t port;
  const char* want;
};

TEST(FormatHostPort, BracketsIpv6Addresses) {
  const std::vector<HostPortCase> cases = {
      {"127.0.0.1", 8000, "127.0.0.1:8000"},
      {"gpu.example.com", 22, "gpu.example.com:22"},
      {"localhost", 0, "localhost:0"},
      {"::1", 22, "[::1]:22"},
      {"::", 65535, "[::]:65535"},
      {"fe80::1%eth0", 2222, "[fe80::1%eth0]:2222"},
      {"2001:db8::5", 443, "[2001:db8::5]:443"},
  };
  for (const HostPortCase& c : cases) {
    EXPECT_EQ(FormatHostPort(c.host, c.port), c.want) << c.host << " " << c.port;
  }
}

}  // namespace
}  // namespace tether::net

namespace tether::net {
namespace {

TEST(ListenTcpAny, PortZeroGivesEveryAddressTheSamePort) {
  auto fds = ListenTcp("*", 0);
  ASSERT_TRUE(fds.ok()) << fds.error().ToString();
  ASSERT_FALSE(fds->empty());
  auto first = LocalPort(fds->front().get());
  ASSERT_TRUE(first.ok());
  EXPECT_NE(*first, 0);
  for (const auto& fd : *fds) EXPECT_EQ(LocalPort(fd.get()).value(), *first);
}

}  // namespace
}  // namespace tether::net
