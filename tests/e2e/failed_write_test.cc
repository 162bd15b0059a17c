// End-to-end: the files tether writes, where writing them is hard. Directories that are
// not there yet (not even their parents) are made, private; a known_hosts that cannot take
// a new key (read-only, a full disk) refuses the connection with the reason and keeps every
// line it had; a state directory on a full disk refuses to start a daemon, saying why.
//
// Read-only files and full disks are made in a private mount namespace of the command's own
// (unshare -m): a read-only bind mount, a 64 KiB tmpfs. They vanish with its last process.
// Those tests skip without root.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "e2e/tether_fixture.h"

namespace tether::testing {
namespace {

using std::chrono::seconds;

// A line of another host that must survive whatever happens to the file.
constexpr char kOtherHost[] =
    "other.example.com ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIOv1yTU3HoDFmkQ0lN4k6y3HkXq4cS2sB0m5J8bV7nZ1\n";
// tmpfs hands out 4 KiB pages: a known_hosts this much short of a page takes the first
// bytes of a new line and then fails with ENOSPC, as a full disk does part-way.
constexpr size_t kPage = 4096;
constexpr size_t kRoomLeft = 40;

int ModeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

class FailedWriteTest : public TetherTest {
 protected:
  void TearDown() override {
    for (const auto& dir : other_state_dirs_) StopAllTethers(dir);
    TetherTest::TearDown();
  }

  // A client config for testhost with StrictHostKeyChecking accept-new and `known_hosts`.
  std::string AcceptNewConfig(const std::string& known_hosts) {
    std::string config = scratch_.File("accept-new.conf");
    ClientConfigOptions options;
    options.overrides["UserKnownHostsFile"] = known_hosts;
    options.overrides["StrictHostKeyChecking"] = "accept-new";
    EXPECT_TRUE(sshd_.WriteClientConfig(config, options).ok());
    return config;
  }

  // `tether -F CONFIG up testhost` as bash would run it inside the script.
  std::string UpLine(const std::string& config, const std::string& state_dir) const {
    return "TETHER_STATE_DIR=" + Quote(state_dir) + " " + TetherBinary() + " -F " + Quote(config) +
           " up testhost; echo EXIT=$?\n";
  }

  // Runs `script` with bash -e in a mount namespace of its own; skips the test if that cannot
  // be made here (not root, no unshare).
  CommandResult InPrivateMounts(const std::string& script) {
    CommandResult probe = RunCommand({"unshare", "--mount", "--propagation", "private", "true"});
    if (!probe.ok()) {
      skipped_ = "no private mount namespace here (needs root): " + probe.Describe();
      return probe;
    }
    return RunCommand(
        {"unshare", "--mount", "--propagation", "private", "bash", "-e", "-c", script}, {},
        seconds(60));
  }

  // The daemon of testhost in `state_dir`, if one runs: pid, or 0.
  int RunningDaemon(const std::string& state_dir) {
    CommandResult r = RunTether(state_dir, {"status", "--json"}, seconds(10));
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_object() || !j["hosts"].is_array()) return 0;
    for (const auto& h : j["hosts"]) {
      if (h.value("host", "") == "testhost") return h.value("pid", -1);
    }
    return 0;
  }

  // After a refused `tether up`: nothing runs, nothing but the log is left, sshd saw no
  // login (the host key is checked before it).
  void ExpectNoDaemonAndNoLogin() {
    EXPECT_EQ(RunningDaemon(state_.path()), 0);
    EXPECT_TRUE(StateFiles().empty()) << "left in the state directory: " << StateFiles().size()
                                      << " file(s), e.g. " << StateFiles().front();
    EXPECT_EQ(sshd_.LogTail(100000).find("Accepted publickey"), std::string::npos)
        << sshd_.LogTail();
  }

  std::vector<std::string> other_state_dirs_;
  std::string skipped_;
};

TEST_F(FailedWriteTest, AStateDirectoryWhoseParentsAreMissingIsMadeWithThemAllPrivate) {
  std::string top = scratch_.File("not-yet");
  std::string state = top + "/nor-this/state";
  other_state_dirs_.push_back(state);
  CommandResult up = RunTether(state, {"-F", sshd_.config_path(), "up", "testhost"});
  ASSERT_TRUE(up.ok()) << up.Describe();
  for (const std::string& dir : {top, top + "/nor-this", state}) {
    EXPECT_EQ(ModeOf(dir), 0700) << dir;
  }
  EXPECT_GT(RunningDaemon(state), 1);
  CommandResult r = RunTether(state, {"-F", sshd_.config_path(), "exec", "testhost", "echo ok"});
  EXPECT_EQ(r.out, "ok\n") << r.Describe();
  EXPECT_TRUE(RunTether(state, {"down", "testhost"}).ok());
}

TEST_F(FailedWriteTest, TheDefaultStateDirectoryIsMadeInAHomeWithoutDotLocal) {
  // ~/.local/state/tether on a fresh account: neither ~/.local nor ~/.local/state exists.
  std::string home = scratch_.File("fresh-home");
  ASSERT_EQ(::mkdir(home.c_str(), 0700), 0);
  std::string state = home + "/.local/state/tether";
  other_state_dirs_.push_back(state);
  CommandResult up =
      RunCommand({TetherBinary(), "-F", sshd_.config_path(), "up", "testhost"}, {{"HOME", home}});
  ASSERT_TRUE(up.ok()) << up.Describe();
  for (const std::string& dir : {home + "/.local", home + "/.local/state", state}) {
    EXPECT_EQ(ModeOf(dir), 0700) << dir;
  }
  EXPECT_GT(RunningDaemon(state), 1);
}

TEST_F(FailedWriteTest, AKnownHostsWhoseParentsAreMissingIsWrittenWithThem) {
  std::string top = scratch_.File("keys");
  std::string known = top + "/of/known_hosts";
  CommandResult up = RunTether(state_.path(), {"-F", AcceptNewConfig(known), "up", "testhost"});
  ASSERT_TRUE(up.ok()) << up.Describe();
  auto text = ReadFile(known);
  ASSERT_TRUE(text.ok()) << text.error().ToString();
  EXPECT_NE(text->find(sshd_.host_pubkey_line()), std::string::npos) << *text;
  EXPECT_EQ(ModeOf(top), 0700);
  EXPECT_EQ(ModeOf(top + "/of"), 0700);
  EXPECT_EQ(ModeOf(known), 0600);
}

TEST_F(FailedWriteTest, AReadOnlyKnownHostsRefusesTheNewKeyWithTheReasonAndKeepsItsLines) {
  // OpenSSH warns and connects anyway; tether's daemon reconnects later with nobody to
  // ask, and a key it could not remember would fail every reconnect: it refuses now, while
  // the person who can fix the file is there.
  std::string known = scratch_.File("known_hosts");
  ASSERT_TRUE(WriteFile(known, kOtherHost).ok());
  std::string config = AcceptNewConfig(known);
  CommandResult r = InPrivateMounts(
      "mount --bind " + Quote(known) + " " + Quote(known) + "\n" + "mount -o remount,bind,ro " +
      Quote(known) + "\n" +
      // The test measures what it says only if even root cannot write the file now.
      "if (echo x >> " + Quote(known) + ") 2>/dev/null; then echo STILL-WRITABLE; fi\n" +
      "set +e\n" + UpLine(config, state_.path()));
  if (!skipped_.empty()) GTEST_SKIP() << skipped_;
  EXPECT_EQ(r.out.find("STILL-WRITABLE"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("EXIT=1"), std::string::npos) << r.Describe();
  EXPECT_NE(
      r.err.find("cannot remember the host key of [127.0.0.1]:" + std::to_string(sshd_.port())),
      std::string::npos)
      << r.Describe();
  EXPECT_NE(r.err.find(known + ": Read-only file system"), std::string::npos) << r.Describe();
  auto after = ReadFile(known);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, kOtherHost);
  ExpectNoDaemonAndNoLogin();
}

TEST_F(FailedWriteTest, AKnownHostsOnAFullDiskRefusesTheNewKeyAndLeavesNoTornLine) {
  std::string mount_point = scratch_.File("small-disk");
  ASSERT_EQ(::mkdir(mount_point.c_str(), 0700), 0);
  std::string known = mount_point + "/known_hosts";
  // Comment lines up to kRoomLeft bytes short of a page, then the other host's line.
  std::string content;
  size_t comments = kPage - kRoomLeft - std::string(kOtherHost).size();
  while (content.size() + 32 <= comments) content += "# " + std::string(29, '-') + "\n";
  content += "#" + std::string(comments - content.size() - 2, ' ') + "\n";
  content += kOtherHost;
  ASSERT_EQ(content.size(), kPage - kRoomLeft);
  std::string staged = scratch_.File("known_hosts.before");
  std::string copied = scratch_.File("known_hosts.after");
  ASSERT_TRUE(WriteFile(staged, content).ok());
  std::string config = AcceptNewConfig(known);
  CommandResult r = InPrivateMounts(
      "mount -t tmpfs -o size=64k,mode=0700 tmpfs " + Quote(mount_point) + "\n" + "cp " +
      Quote(staged) + " " + Quote(known) + "\n" +
      "dd if=/dev/zero of=" + Quote(mount_point + "/filler") + " bs=4k 2>/dev/null || true\n" +
      // Full, or the test measures nothing: not one more page fits.
      "if (head -c 4096 /dev/zero > " + Quote(mount_point + "/probe") +
      ") 2>/dev/null; then echo NOT-FULL; fi\n" + "set +e\n" + UpLine(config, state_.path()) +
      "cp " + Quote(known) + " " + Quote(copied) + "\n");
  if (!skipped_.empty()) GTEST_SKIP() << skipped_;
  EXPECT_EQ(r.out.find("NOT-FULL"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("EXIT=1"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find(known + ": No space left on device"), std::string::npos) << r.Describe();
  auto after = ReadFile(copied);
  ASSERT_TRUE(after.ok()) << after.error().ToString() << "\n" << r.Describe();
  EXPECT_EQ(after->size(), content.size())
      << "a torn line was left: ..."
      << after->substr(after->size() > 120 ? after->size() - 120 : 0);
  EXPECT_EQ(*after, content);
  ExpectNoDaemonAndNoLogin();
}

TEST_F(FailedWriteTest, AStateDirectoryOnAFullDiskRefusesToStartSayingWhy) {
  std::string mount_point = scratch_.File("small-disk");
  ASSERT_EQ(::mkdir(mount_point.c_str(), 0700), 0);
  std::string state = mount_point + "/state";
  std::string tether = std::string(TetherBinary());
  CommandResult r = InPrivateMounts(
      "mount -t tmpfs -o size=64k,mode=0700 tmpfs " + Quote(mount_point) + "\n" + "mkdir -m 0700 " +
      Quote(state) + "\n" + "dd if=/dev/zero of=" + Quote(mount_point + "/filler") +
      " bs=4k 2>/dev/null || true\n" + "if (head -c 4096 /dev/zero > " +
      Quote(mount_point + "/probe") + ") 2>/dev/null; then echo NOT-FULL; fi\n" + "set +e\n" +
      UpLine(sshd_.config_path(), state) +
      // What is left, and whether a daemon runs; then stop any by its pid file, as the
      // state directory (and so the daemon) is only visible in here.
      "echo \"FILES:[$(ls " + Quote(state) + " | grep -v '\\.log$' | tr '\\n' ' ')]\"\n" +
      "TETHER_STATE_DIR=" + Quote(state) + " " + tether + " status --json | tr -d ' \\n'; echo\n" +
      "TETHER_STATE_DIR=" + Quote(state) + " " + tether + " down --all >/dev/null 2>&1\n");
  if (!skipped_.empty()) GTEST_SKIP() << skipped_;
  EXPECT_EQ(r.out.find("NOT-FULL"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("EXIT=1"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find(state + "/testhost.pid: No space left on device"), std::string::npos)
      << r.Describe();
  EXPECT_NE(r.out.find("FILES:[]"), std::string::npos) << "files left:\n" << r.Describe();
  EXPECT_EQ(r.out.find("\"host\":\"testhost\""), std::string::npos) << "a daemon runs:\n"
                                                                    << r.Describe();
}

TEST_F(FailedWriteTest, AStateDirectoryThatCannotBeMadeSaysWhichAndWhy) {
  // Its parents are missing and their own parent is read-only: the first that cannot be
  // made is named, with the reason.
  std::string ro = scratch_.File("read-only");
  ASSERT_EQ(::mkdir(ro.c_str(), 0700), 0);
  std::string state = ro + "/missing/state";
  CommandResult r =
      InPrivateMounts("mount --bind " + Quote(ro) + " " + Quote(ro) + "\n" +
                      "mount -o remount,bind,ro " + Quote(ro) + "\n" + "if mkdir " +
                      Quote(ro + "/probe") + " 2>/dev/null; then echo STILL-WRITABLE; fi\n" +
                      "set +e\n" + UpLine(sshd_.config_path(), state));
  if (!skipped_.empty()) GTEST_SKIP() << skipped_;
  EXPECT_EQ(r.out.find("STILL-WRITABLE"), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("EXIT=1"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("cannot create " + ro + "/missing: Read-only file system"),
            std::string::npos)
      << r.Describe();
  // Refused before anything else: not even a connection to the server.
  EXPECT_EQ(sshd_.LogTail(100000).find("Connection from"), std::string::npos) << sshd_.LogTail();
}

TEST_F(FailedWriteTest, ADaemonWhoseDiskFillsUpKeepsServing) {
  // The disk fills under a running daemon: its log (and its stderr, the same file) can no
  // longer be written, and it must go on serving all the same. The log is padded to a
  // whole page first, so that every line after the disk fills needs a page it cannot get.
  std::string mount_point = scratch_.File("small-disk");
  ASSERT_EQ(::mkdir(mount_point.c_str(), 0700), 0);
  std::string state = mount_point + "/state";
  std::string log = Quote(state + "/testhost.log");
  std::string tether = "TETHER_STATE_DIR=" + Quote(state) + " " + TetherBinary() + " -F " +
                       Quote(sshd_.config_path());
  CommandResult r = InPrivateMounts(
      "mount -t tmpfs -o size=256k,mode=0700 tmpfs " + Quote(mount_point) + "\n" + tether +
      " up testhost >/dev/null\n" + "echo PID-UP=$(cat " + Quote(state + "/testhost.pid") + ")\n" +
      "pad=$(( (4096 - $(stat -c %s " + log + ") % 4096) % 4096 ))\n" +
      "head -c $pad /dev/zero | tr '\\0' ' ' >> " + log + "\n" +
      "dd if=/dev/zero of=" + Quote(mount_point + "/filler") + " bs=4k 2>/dev/null || true\n" +
      "if (head -c 4096 /dev/zero > " + Quote(mount_point + "/probe") +
      ") 2>/dev/null; then echo NOT-FULL; fi\n" + "set +e\n" + "echo LOG-BEFORE=$(stat -c %s " +
      log + ")\n" + "ok=0; for i in $(seq 1 20); do\n" + "  out=$(" + tether +
      " exec testhost echo round-$i); [ \"$out\" = round-$i ] && ok=$((ok+1))\n" + "done\n" +
      "echo SERVED=$ok\n" + "echo PID-NOW=$(cat " + Quote(state + "/testhost.pid") + ")\n" +
      "echo LOG-AFTER=$(stat -c %s " + log + ")\n" + tether +
      " status --json | tr -d ' \\n'; echo\n" + tether +
      " down testhost >/dev/null 2>&1; echo DOWN=$?\n");
  if (!skipped_.empty()) GTEST_SKIP() << skipped_;
  EXPECT_EQ(r.out.find("NOT-FULL"), std::string::npos) << r.Describe();
  // The daemon did try to log (a line for each command) and could not.
  size_t before = r.out.find("LOG-BEFORE="), after = r.out.find("LOG-AFTER=");
  ASSERT_TRUE(before != std::string::npos && after != std::string::npos) << r.Describe();
  EXPECT_EQ(std::atol(r.out.c_str() + before + 11), std::atol(r.out.c_str() + after + 10))
      << "the log grew: the disk was not full for it\n"
      << r.Describe();
  EXPECT_NE(r.out.find("SERVED=20"), std::string::npos) << r.Describe();
  // By the daemon that was up before the disk filled (tether exec would start another).
  size_t up = r.out.find("PID-UP="), now = r.out.find("PID-NOW=");
  ASSERT_TRUE(up != std::string::npos && now != std::string::npos) << r.Describe();
  long up_pid = std::atol(r.out.c_str() + up + 7);
  EXPECT_GT(up_pid, 1) << r.Describe();
  EXPECT_EQ(up_pid, std::atol(r.out.c_str() + now + 8)) << "the daemon was replaced\n"
                                                        << r.Describe();
  EXPECT_NE(r.out.find("\"state\":\"up\""), std::string::npos) << r.Describe();
  EXPECT_NE(r.out.find("DOWN=0"), std::string::npos) << r.Describe();
}

}  // namespace
}  // namespace tether::testing
