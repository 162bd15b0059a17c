#include "config/control_path.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "test_support/scoped_env.h"

namespace tether::config {
namespace {

constexpr OpenSshVersion kDebian12{9, 2};
constexpr OpenSshVersion kOpenSsh96{9, 6};

// The machine the expected values were taken on with the real ssh 9.2 (`ssh -G -F cfg`):
// host name "vm", root.
LocalIdentity TakenOn() { return {"/root", "root", 0, "vm"}; }

HostConfig Gpu() {
  HostConfig h;
  h.alias = "gpu";
  h.hostname = "box.example.org";  // HostName Box.Example.ORG, lowercased as ssh does
  h.user = "alice";
  h.port = 2222;
  h.host_key_alias = "gpukey";
  return h;
}

HostConfig Plain(const std::string& user) {
  HostConfig h;
  h.alias = "plain";
  h.hostname = "plain";
  h.user = user;
  h.port = 22;
  return h;
}

const char* FakeEnv(const char* name) {
  return std::strcmp(name, "HOME") == 0 ? "/nonexistent" : nullptr;
}

TEST(OpenSshVersion, IsReadFromWhatSshDashVPrints) {
  struct Case {
    const char* text;
    std::optional<std::pair<int, int>> want;
  } cases[] = {
      {"OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026", std::pair{9, 2}},
      {"OpenSSH_10.0p2 Debian-7, OpenSSL 3.5.1 1 Jul 2025\n", std::pair{10, 0}},
      {"OpenSSH_8.4p1 Debian-5+deb11u3, OpenSSL 1.1.1w  11 Sep 2023", std::pair{8, 4}},
      {"OpenSSH_9.6, LibreSSL 3.3.6", std::pair{9, 6}},
      {"ssh: command not found", std::nullopt},
      {"OpenSSH_", std::nullopt},
      {"OpenSSH_9", std::nullopt},
      {"", std::nullopt},
  };
  for (const Case& c : cases) {
    auto got = ParseOpenSshVersion(c.text);
    ASSERT_EQ(got.has_value(), c.want.has_value()) << c.text;
    if (got) {
      EXPECT_EQ(got->major, c.want->first) << c.text;
      EXPECT_EQ(got->minor, c.want->second) << c.text;
    }
  }
  EXPECT_FALSE(kDebian12.AtLeast(OpenSshVersion::WithJumpHost()));
  EXPECT_TRUE(kOpenSsh96.AtLeast(OpenSshVersion::WithJumpHost()));
  EXPECT_TRUE((OpenSshVersion{10, 0}).AtLeast(OpenSshVersion::WithJumpHost()));
}

TEST(ConnectionHash, IsWhatSsh92NamesPercentC) {
  // ssh -G with HostName Box.Example.ORG, User alice, Port 2222 on host "vm".
  EXPECT_EQ(ConnectionHash(kDebian12, "vm", "box.example.org", "2222", "alice", "ignored"),
            "ceef1f4e7536512aae86d3b876c7af616d126fb7");
}

TEST(ConnectionHash, From96OnHashesTheJumpHostToo) {
  // No jump host: the same bytes go in as before 9.6.
  EXPECT_EQ(ConnectionHash(kOpenSsh96, "vm", "box.example.org", "2222", "alice", ""),
            "ceef1f4e7536512aae86d3b876c7af616d126fb7");
  // printf 'vmbox.example.org2222alicebastion' | sha1sum
  EXPECT_EQ(ConnectionHash(kOpenSsh96, "vm", "box.example.org", "2222", "alice", "bastion"),
            "27d9a8caadb9739a3f825fc61fec4182be8c72f5");
}

TEST(ControlPathExpander, EveryTokenAsSsh92ExpandsIt) {
  ControlPathExpander expander(TakenOn(), kDebian12, FakeEnv);
  auto got = expander.Expand("/tmp/s/%C|%d|%h|%i|%k|%L|%l|%n|%p|%r|%u|%%|${HOME}", Gpu());
  ASSERT_TRUE(got.ok()) << got.error().ToString();
  // `ssh -G` printed, with HOME=/nonexistent in its environment:
  EXPECT_EQ(*got,
            "/tmp/s/ceef1f4e7536512aae86d3b876c7af616d126fb7|/root|box.example.org|0|gpukey|vm|vm|"
            "gpu|2222|alice|root|%|/nonexistent");
}

TEST(ControlPathExpander, TildeIsThePasswordDatabasesHome) {
  ControlPathExpander expander(TakenOn(), kDebian12, FakeEnv);
  // ssh -G: "ControlPath ~/x/%C" for plain, then for bob@plain.
  EXPECT_EQ(*expander.Expand("~/x/%C", Plain("root")),
            "/root/x/54378cf02d7991f131b80407084c54a87bd9ec59");
  EXPECT_EQ(*expander.Expand("~/x/%C", Plain("bob")),
            "/root/x/2d280fce2aab30cab4b13a7234a5b27f42bc85e2");
  // misc.c tilde_expand: one '/' after the home, whatever was written.
  EXPECT_EQ(*expander.Expand("~", Plain("root")), "/root/");
  EXPECT_EQ(*expander.Expand("~//s/%r", Plain("root")), "/root/s/root");
  EXPECT_EQ(*expander.Expand("a~/%n", Plain("root")), "a~/plain");
  // ~user: that user's entry.
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  ASSERT_EQ(::getpwnam_r("nobody", &pw, buf.data(), buf.size(), &found), 0);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*expander.Expand("~nobody/s", Plain("root")), std::string(pw.pw_dir) + "/s");
  EXPECT_FALSE(expander.Expand("~no-such-user-here/s", Plain("root")).ok());
}

TEST(ControlPathExpander, TheGuidesPathNamesUserHostAndPort) {
  ControlPathExpander expander(TakenOn(), kDebian12, FakeEnv);
  EXPECT_EQ(*expander.Expand("~/.ssh/sockets/%r@%h-%p", Gpu()),
            "/root/.ssh/sockets/alice@box.example.org-2222");
}

TEST(ControlPathExpander, KWithoutHostKeyAliasIsTheAlias) {
  ControlPathExpander expander(TakenOn(), kDebian12, FakeEnv);
  EXPECT_EQ(*expander.Expand("/s/%k", Plain("root")), "/s/plain");
}

TEST(ControlPathExpander, LocalShortNameStopsAtTheFirstDot) {
  ControlPathExpander expander({"/home/a", "a", 1000, "laptop.lan.example"}, kDebian12, FakeEnv);
  EXPECT_EQ(*expander.Expand("/s/%L/%l/%i/%u/%d", Plain("a")),
            "/s/laptop/laptop.lan.example/1000/a//home/a");
}

TEST(ControlPathExpander, JIsAJumpHostFrom96AndRefusedBefore) {
  HostConfig h = Gpu();
  h.proxy_jump = {"ops@gate.example:2200", "carol@bastion:22"};
  EXPECT_EQ(JumpHostOf(h), "bastion");
  ControlPathExpander newer({"/root", "root", 0, "vm"}, kOpenSsh96, FakeEnv);
  EXPECT_EQ(*newer.Expand("/s/%j/%C", h), "/s/bastion/27d9a8caadb9739a3f825fc61fec4182be8c72f5");
  ControlPathExpander older(TakenOn(), kDebian12, FakeEnv);
  auto refused = older.Expand("/s/%j", h);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("%j is not a ControlPath token of OpenSSH 9.2"),
            std::string::npos)
      << refused.error().message;
  // And 9.2's %C ignores the jump host.
  EXPECT_EQ(*older.Expand("%C", h), "ceef1f4e7536512aae86d3b876c7af616d126fb7");
}

TEST(ControlPathExpander, RefusesWhatSshRefuses) {
  ControlPathExpander expander(TakenOn(), kDebian12, FakeEnv);
  struct Case {
    const char* path;
    const char* says;
  } cases[] = {
      {"/s/%T", "%T is not a ControlPath token"},
      {"/s/%", "a lone '%'"},
      {"/s/${NOT_SET_HERE}", "${NOT_SET_HERE} is not set"},
      {"/s/${HOME", "has no closing }"},
      {"/s/${}", "an empty ${}"},
  };
  for (const Case& c : cases) {
    auto got = expander.Expand(c.path, Gpu());
    ASSERT_FALSE(got.ok()) << c.path;
    EXPECT_NE(got.error().message.find(c.says), std::string::npos) << got.error().message;
  }
}

TEST(CurrentIdentity, TakesTheHomeFromThePasswordDatabaseNotHome) {
  test_support::ScopedEnv home("HOME", "/somewhere/else");
  auto id = CurrentIdentity();
  ASSERT_TRUE(id.ok()) << id.error().ToString();
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  ASSERT_EQ(::getpwuid_r(::getuid(), &pw, buf.data(), buf.size(), &found), 0);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(id->home, pw.pw_dir);
  EXPECT_EQ(id->user, pw.pw_name);
  EXPECT_EQ(id->uid, ::getuid());
  char name[256] = {};
  ASSERT_EQ(::gethostname(name, sizeof name - 1), 0);
  EXPECT_EQ(id->hostname, name);
}

TEST(DetectOpenSshVersion, AsksTheSshOnPath) {
  auto version = DetectOpenSshVersion();
  ASSERT_TRUE(version.has_value()) << "no ssh on PATH, or it names no version";
  EXPECT_GE(version->major, 7);
}

}  // namespace
}  // namespace tether::config
