#include "daemon/control_path_listener.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "control/fake_mux_host.h"
#include "control/mux_codec.h"
#include "control/mux_probe.h"
#include "control/mux_wire.h"
#include "net/event_loop.h"
#include "net/socket.h"
#include "test_support/other_uid.h"

namespace tether::daemon {
namespace {

using namespace std::chrono_literals;
using Verdict = ControlPathPlace::Verdict;
namespace mux = control::mux;

struct Inode {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const Inode&) const = default;
};
std::optional<Inode> InodeOf(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
  return Inode{st.st_dev, st.st_ino};
}

// A socket file nobody accepts on, as a master killed with SIGKILL leaves behind.
void MakeStaleSocket(const std::string& path) {
  auto listener = net::ListenUnix(path);
  ASSERT_TRUE(listener.ok()) << listener.error().ToString();
}  // closed here; the file stays

// Another mux master on its own thread and loop (the listener's probe blocks its own
// thread, as it would against ssh's master in another process).
class OtherMaster {
 public:
  explicit OtherMaster(const std::string& path) {
    auto listener = net::ListenUnix(path);
    EXPECT_TRUE(listener.ok());
    if (!listener.ok()) return;
    server_ = std::make_unique<control::MuxServer>(loop_, std::move(*listener), path, host_);
    thread_ = std::thread([this] {
      for (int i = 0; i < 3000 && !stop_; ++i) (void)loop_.RunOnce(10ms);  // bounded: 30 s
    });
  }
  ~OtherMaster() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }
  uint32_t pid() const { return 4242; }  // what FakeMuxHost answers an alive check with

 private:
  net::EventLoop loop_;
  control::FakeMuxHost host_{loop_};
  std::unique_ptr<control::MuxServer> server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class ControlPathListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-cp-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    sockets_ = dir_ + "/sockets";
    ASSERT_EQ(::mkdir(sockets_.c_str(), 0700), 0);
    path_ = sockets_ + "/alice@gpu-22";
  }
  void TearDown() override {
    listener_.reset();
    std::filesystem::remove_all(dir_);
  }
  ControlPathListener& Listener() {
    listener_ = std::make_unique<ControlPathListener>(loop_, path_, host_, "gpu");
    return *listener_;
  }
  void RunOnce() { EXPECT_TRUE(loop_.RunOnce(10ms).ok()); }

  std::string dir_, sockets_, path_;
  net::EventLoop loop_;
  control::FakeMuxHost host_{loop_};
  std::unique_ptr<ControlPathListener> listener_;
};

TEST_F(ControlPathListenerTest, JudgesTheDirectoryAndWhatIsThere) {
  EXPECT_EQ(JudgeControlPathPlace(path_, ::geteuid()).verdict, Verdict::kFree);
  EXPECT_EQ(JudgeControlPathPlace(dir_ + "/missing/x", ::geteuid()).verdict, Verdict::kNoDirectory);

  ASSERT_EQ(::chmod(sockets_.c_str(), 0777), 0);
  ControlPathPlace open = JudgeControlPathPlace(path_, ::geteuid());
  EXPECT_EQ(open.verdict, Verdict::kRefused);
  EXPECT_NE(open.why.find("no sticky bit"), std::string::npos) << open.why;
  ASSERT_EQ(::chmod(sockets_.c_str(), 0770), 0);
  EXPECT_EQ(JudgeControlPathPlace(path_, ::geteuid()).verdict, Verdict::kRefused);
  // /tmp's way: anyone may write, nobody may remove another's file.
  ASSERT_EQ(::chmod(sockets_.c_str(), 01777), 0);
  EXPECT_EQ(JudgeControlPathPlace(path_, ::geteuid()).verdict, Verdict::kFree);
  ASSERT_EQ(::chmod(sockets_.c_str(), 0700), 0);

  ASSERT_EQ(::close(::open(path_.c_str(), O_CREAT | O_WRONLY, 0600)), 0);
  ControlPathPlace file = JudgeControlPathPlace(path_, ::geteuid());
  EXPECT_EQ(file.verdict, Verdict::kRefused);
  EXPECT_NE(file.why.find("not a socket"), std::string::npos) << file.why;
  ASSERT_EQ(::unlink(path_.c_str()), 0);

  MakeStaleSocket(path_);
  ControlPathPlace ours = JudgeControlPathPlace(path_, ::geteuid());
  EXPECT_EQ(ours.verdict, Verdict::kSocket);
  EXPECT_EQ((Inode{ours.dev, ours.ino}), *InodeOf(path_));
}

TEST_F(ControlPathListenerTest, RefusesADirectoryOrASocketOfAnotherAccount) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown to another account";
  MakeStaleSocket(path_);
  ASSERT_EQ(::lchown(path_.c_str(), test_support::kNobodyUid, test_support::kNobodyUid), 0);
  ControlPathPlace theirs = JudgeControlPathPlace(path_, ::geteuid());
  EXPECT_EQ(theirs.verdict, Verdict::kRefused);
  EXPECT_NE(theirs.why.find("belongs to uid 65534"), std::string::npos) << theirs.why;
  // And the listener leaves it where it is.
  Listener().Claim();
  EXPECT_EQ(listener_->status().state, ControlPathState::kRefused);
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, test_support::kNobodyUid);
  listener_.reset();
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0) << "a socket of another account was removed";

  ASSERT_EQ(::unlink(path_.c_str()), 0);
  ASSERT_EQ(::chown(sockets_.c_str(), test_support::kNobodyUid, test_support::kNobodyUid), 0);
  ControlPathPlace dir = JudgeControlPathPlace(path_, ::geteuid());
  EXPECT_EQ(dir.verdict, Verdict::kRefused);
  EXPECT_NE(dir.why.find("belongs to uid 65534"), std::string::npos) << dir.why;
}

TEST_F(ControlPathListenerTest, ServesAFreePathPrivatelyAndRemovesItOnRelease) {
  Listener().Claim();
  ASSERT_EQ(listener_->status().state, ControlPathState::kServing) << listener_->status().detail;
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Nothing but the socket: the private name it was bound on is gone.
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(sockets_)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);

  // A mux client gets our hello there.
  auto fd = net::ConnectUnix(path_);
  ASSERT_TRUE(fd.ok());
  std::string in;
  for (int i = 0; i < 50 && mux::ParseFrame(in).state != mux::Frame::State::kDone; ++i) {
    RunOnce();
    char buf[256];
    ssize_t n = ::recv(fd->get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) in.append(buf, static_cast<size_t>(n));
  }
  mux::Frame hello = mux::ParseFrame(in);
  ASSERT_EQ(hello.state, mux::Frame::State::kDone);
  EXPECT_EQ(mux::PayloadType(hello.payload), control::mux::kMsgHello);

  listener_->Release();
  EXPECT_FALSE(InodeOf(path_).has_value()) << "our socket stayed after Release";
}

TEST_F(ControlPathListenerTest, ReleaseLeavesAFileThatIsNoLongerOurs) {
  Listener().Claim();
  ASSERT_EQ(listener_->status().state, ControlPathState::kServing);
  // Someone moved ours away and put their own there.
  ASSERT_EQ(::rename(path_.c_str(), (path_ + ".moved").c_str()), 0);
  MakeStaleSocket(path_);
  const Inode theirs = *InodeOf(path_);
  listener_->Release();
  ASSERT_TRUE(InodeOf(path_).has_value()) << "a socket that was not ours was removed";
  EXPECT_EQ(*InodeOf(path_), theirs);
}

TEST_F(ControlPathListenerTest, AStaleSocketIsReplaced) {
  MakeStaleSocket(path_);
  EXPECT_EQ(control::ProbeMuxSocket(path_, 1000ms).kind, control::MuxProbe::Kind::kStale);
  Listener().Claim();
  ASSERT_EQ(listener_->status().state, ControlPathState::kServing) << listener_->status().detail;
  // Someone accepts there now (the inode number may be the stale one's again).
  EXPECT_TRUE(net::ConnectUnix(path_).ok());
}

TEST_F(ControlPathListenerTest, ALiveMasterIsLeftAloneAndNamedByPid) {
  OtherMaster master(path_);
  const Inode theirs = *InodeOf(path_);
  Listener().Claim();
  const ControlPathStatus& st = listener_->status();
  EXPECT_EQ(st.state, ControlPathState::kHeld);
  EXPECT_EQ(st.holder_pid, master.pid());
  EXPECT_NE(st.detail.find("is held by an OpenSSH master, pid 4242"), std::string::npos)
      << st.detail;
  listener_.reset();
  ASSERT_TRUE(InodeOf(path_).has_value());
  EXPECT_EQ(*InodeOf(path_), theirs) << "the master's socket was touched";
}

TEST_F(ControlPathListenerTest, AMissingDirectoryIsReportedNotCreated) {
  path_ = dir_ + "/not-made/alice@gpu-22";
  Listener().Claim();
  EXPECT_EQ(listener_->status().state, ControlPathState::kNoDirectory);
  EXPECT_NE(listener_->status().detail.find("does not exist"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/not-made"));
}

TEST_F(ControlPathListenerTest, APathTooLongForAMasterFails) {
  path_ = sockets_ + "/" + std::string(100, 'x');
  Listener().Claim();
  EXPECT_EQ(listener_->status().state, ControlPathState::kFailed);
  EXPECT_NE(listener_->status().detail.find("too long"), std::string::npos);
}

TEST_F(ControlPathListenerTest, AnotherAccountGetsNoHello) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another account";
  // The other account must reach the socket for the peer check to be what refuses it.
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(sockets_.c_str(), 01777), 0);
  Listener().Claim();
  ASSERT_EQ(listener_->status().state, ControlPathState::kServing);
  ASSERT_EQ(::chmod(path_.c_str(), 0666), 0);  // as a careless chmod would leave it
  auto outcome =
      test_support::ConnectAsUid(path_, test_support::kNobodyUid, "", [this] { RunOnce(); });
  ASSERT_TRUE(outcome.ran);
  EXPECT_TRUE(outcome.connected);
  EXPECT_TRUE(outcome.eof);
  EXPECT_EQ(outcome.received, "") << "another account was greeted";
}

TEST_F(ControlPathListenerTest, ForHostSkipsNoneUnsetAndOurOwnMuxPath) {
  config::HostConfig host;
  host.alias = "gpu";
  host.hostname = "gpu";
  host.user = "alice";
  host.port = 22;
  EXPECT_EQ(ControlPathListener::ForHost(loop_, host, "/state/gpu.mux", host_), nullptr);
  host.control_path = "none";
  EXPECT_EQ(ControlPathListener::ForHost(loop_, host, "/state/gpu.mux", host_), nullptr);
  host.control_path = "/state/%n.mux";  // what ssh-config --install points it at
  EXPECT_EQ(ControlPathListener::ForHost(loop_, host, "/state/gpu.mux", host_), nullptr);
  host.control_path = sockets_ + "/%r@%h-%p";
  auto listener = ControlPathListener::ForHost(loop_, host, "/state/gpu.mux", host_);
  ASSERT_NE(listener, nullptr);
  EXPECT_EQ(listener->status().path, sockets_ + "/alice@gpu-22");
  host.control_path = sockets_ + "/%T";
  auto bad = ControlPathListener::ForHost(loop_, host, "/state/gpu.mux", host_);
  ASSERT_NE(bad, nullptr);
  EXPECT_EQ(bad->status().state, ControlPathState::kFailed);
  bad->Claim();
  EXPECT_FALSE(std::filesystem::exists(sockets_ + "/%T"));
}

}  // namespace
}  // namespace tether::daemon
