#include "config/tether_config.h"

#include <gtest/gtest.h>

#include <string>

namespace tether::config {
namespace {

TEST(TetherConfig, ReadsSettingsAndAHostProfile) {
  auto c = TetherConfig::Parse(R"(
[settings]
connect_timeout_s = 10
keepalive_interval_s = 2

[hosts.gpu]
forwards = ["-L 8000:localhost:8000", "-L 5678:localhost:5678"]
user = "alice"
port = 2222
keepalive_interval_s = 5
)",
                               "test.toml");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  Settings s = c->SettingsFor("gpu");
  EXPECT_EQ(s.connect_timeout_s, 10);
  EXPECT_EQ(s.keepalive_interval_s, 5);  // the host's own wins
  EXPECT_EQ(c->SettingsFor("other").keepalive_interval_s, 2);
  const HostProfile* p = c->ProfileFor("gpu");
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(p->forwards.size(), 2u);
  EXPECT_EQ(p->forwards[0].listen.port, 8000);
  EXPECT_EQ(p->forwards[1].target.port, 5678);
  EXPECT_EQ(c->ProfileFor("other"), nullptr);
}

TEST(TetherConfig, ProfileOverridesSshConfigValues) {
  auto c = TetherConfig::Parse(
      "[hosts.gpu]\nhostname = \"10.0.0.5\"\nuser = \"alice\"\nport = 2222\n"
      "identity_file = \"/keys/gpu\"\nconnect_timeout_s = 7\n",
      "t.toml");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  HostConfig host;
  host.alias = "gpu";
  host.hostname = "gpu";
  host.user = "bob";
  host.port = 22;
  host.identity_files = {"/home/bob/.ssh/id_ed25519"};
  c->ApplyTo(host);
  EXPECT_EQ(host.hostname, "10.0.0.5");
  EXPECT_EQ(host.user, "alice");
  EXPECT_EQ(host.port, 2222);
  EXPECT_EQ(host.identity_files, std::vector<std::string>{"/keys/gpu"});
  EXPECT_FALSE(host.identity_files_default);
  EXPECT_EQ(host.connect_timeout, std::chrono::seconds(7));
}

TEST(TetherConfig, EmptyTextIsAnEmptyConfig) {
  auto c = TetherConfig::Parse("", "t.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ProfileFor("gpu"), nullptr);
  EXPECT_EQ(c->SettingsFor("gpu"), Settings{});
}

TEST(TetherConfig, MissingFileIsAnEmptyConfig) {
  auto c = TetherConfig::Load("/nonexistent/tether/config.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ProfileFor("gpu"), nullptr);
}

struct BadCase {
  const char* text;
  const char* error_part;
};

TEST(TetherConfig, RefusesMalformedFilesNamingLineAndKey) {
  const BadCase cases[] = {
      {"[settings]\nkeepalive_interval_s = \"2s\"\n", "t.toml:2: keepalive_interval_s must be"},
      {"[settings]\nkeepalive_interval_s = 0\n", "keepalive_interval_s must be"},
      {"[settings]\nkeepalive_intervall_s = 2\n",
       "t.toml:2: unknown key \"keepalive_intervall_s\""},
      {"[setings]\nx = 1\n", "unknown section \"setings\""},
      {"[hosts.gpu]\nforwards = [\"8000:localhost:8000\"]\n", "must start with -L, -R or -D"},
      {"[hosts.gpu]\nforwards = [\"-L 80x:localhost:80\"]\n", "80x"},
      {"[hosts.gpu]\nforwards = \"-L 8000:localhost:8000\"\n", "forwards must be a list"},
      {"[hosts.gpu]\nport = 70000\n", "port must be"},
      {"[hosts.gpu]\nuser = \"\"\n", "user must be a non-empty string"},
      {"[hosts]\ngpu = 3\n", "hosts.gpu must be a table"},
      {"[hosts.gpu\n", "t.toml:1"},
  };
  for (const auto& c : cases) {
    auto parsed = TetherConfig::Parse(c.text, "t.toml");
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_NE(parsed.error().message.find(c.error_part), std::string::npos)
        << c.text << " -> " << parsed.error().message;
    EXPECT_EQ(parsed.error().step, "config");
  }
}

TEST(MergeForwards, HigherPrecedenceWinsTheSameListenAddress) {
  auto f = [](const char* spec) { return ParseForwardSpec(ForwardKind::kLocal, spec).value(); };
  auto merged = MergeForwards({{f("8000:localhost:9000")},
                               {f("8000:localhost:8000"), f("5678:localhost:5678")},
                               {f("5678:localhost:1"), f("127.0.0.1:8080:localhost:8080")}});
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].target.port, 9000);
  EXPECT_EQ(merged[1].target.port, 5678);
  EXPECT_EQ(merged[2].listen.port, 8080);
}

TEST(MergeForwards, EveryRemoteForwardToAnyPortIsOneOfItsOwnUnlessTheSame) {
  auto r = [](const char* spec) { return ParseForwardSpec(ForwardKind::kRemote, spec).value(); };
  auto merged =
      MergeForwards({{r("0:localhost:80"), r("0:localhost:443")},
                     {r("0:localhost:80"), r("9000:localhost:1"), r("9000:localhost:2")}});
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].target.port, 80);
  EXPECT_EQ(merged[1].target.port, 443);
  EXPECT_EQ(merged[2].target.port, 1);
}

}  // namespace
}  // namespace tether::config

namespace tether::config {
namespace {

TEST(TetherConfigProxy, ProfileProxySettingsBeatTheDefaults) {
  auto c = TetherConfig::Parse(
      "[settings]\nproxy_port = 10808\nupstream = \"http://127.0.0.1:7890\"\n"
      "[hosts.gpu]\nproxy_port = 18000\nproxy_open = true\n",
      "config.toml");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  Settings gpu = c->SettingsFor("gpu");
  EXPECT_EQ(gpu.proxy_port, 18000);
  EXPECT_EQ(gpu.upstream, "http://127.0.0.1:7890");
  EXPECT_EQ(gpu.proxy_open, true);
  Settings other = c->SettingsFor("other");
  EXPECT_EQ(other.proxy_port, 10808);
  EXPECT_FALSE(other.proxy_open.has_value());
}

TEST(TetherConfigProxy, BadProxySettingsNameTheLineAndKey) {
  for (const char* text : {"[settings]\nproxy_port = 70000\n", "[settings]\nproxy_open = \"yes\"\n",
                           "[settings]\nupstream = 7890\n"}) {
    auto c = TetherConfig::Parse(text, "config.toml");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_NE(c.error().message.find("config.toml:2"), std::string::npos) << c.error().message;
  }
}

TEST(TetherConfigNotify, NotifyIsABooleanPerHostOrForAll) {
  auto c = TetherConfig::Parse("[settings]\nnotify = false\n[hosts.lab]\nnotify = true\n",
                               "config.toml");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->SettingsFor("lab").notify, true);
  EXPECT_EQ(c->SettingsFor("gpu").notify, false);
  auto none = TetherConfig::Parse("", "config.toml");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->SettingsFor("gpu").notify.has_value()) << "unset: on, the daemon's default";
  auto bad = TetherConfig::Parse("[settings]\nnotify = \"no\"\n", "config.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("notify must be true or false"), std::string::npos)
      << bad.error().message;
}

TEST(TetherConfigAutoForward, AutoForwardKeysPerHostOrForAll) {
  auto c = TetherConfig::Parse(
      "[settings]\nauto_forward = true\nauto_forward_allow = \"8000-8999, 6006\"\n"
      "auto_forward_max = 30\n[hosts.lab]\nauto_forward = false\nauto_forward_deny = \"8888\"\n",
      "config.toml");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->SettingsFor("gpu").auto_forward, true);
  EXPECT_EQ(c->SettingsFor("gpu").auto_forward_allow, "8000-8999, 6006");
  EXPECT_EQ(c->SettingsFor("gpu").auto_forward_max, 30);
  EXPECT_EQ(c->SettingsFor("lab").auto_forward, false);
  EXPECT_EQ(c->SettingsFor("lab").auto_forward_deny, "8888");
  for (const char* text :
       {"[settings]\nauto_forward_allow = \"8000-\"\n", "[settings]\nauto_forward_deny = 22\n",
        "[settings]\nauto_forward = 1\n"}) {
    auto bad = TetherConfig::Parse(text, "config.toml");
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.error().message.find("auto_forward"), std::string::npos) << bad.error().message;
  }
}

TEST(TetherConfigFastExec, FastExecPerHostOrForAll) {
  auto c = TetherConfig::Parse("[settings]\nfast_exec = true\n[hosts.lab]\nfast_exec = false\n",
                               "config.toml");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->SettingsFor("gpu").fast_exec, true);
  EXPECT_EQ(c->SettingsFor("lab").fast_exec, false);
  auto bad = TetherConfig::Parse("[settings]\nfast_exec = \"yes\"\n", "config.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("fast_exec must be true or false"), std::string::npos)
      << bad.error().message;
}

TEST(TetherConfigProxy, LaptopNetworkIsPublicPrivateOrAllPerHost) {
  auto c = TetherConfig::Parse(
      "[settings]\nlaptop_network = \"private\"\n[hosts.lab]\nlaptop_network = \"all\"\n",
      "config.toml");
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->SettingsFor("lab").laptop_network, "all");
  EXPECT_EQ(c->SettingsFor("gpu").laptop_network, "private");
  for (const char* text :
       {"[settings]\nlaptop_network = \"everything\"\n", "[settings]\nlaptop_network = true\n"}) {
    auto bad = TetherConfig::Parse(text, "config.toml");
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.error().message.find("config.toml:2"), std::string::npos) << bad.error().message;
    EXPECT_NE(bad.error().message.find("\"public\", \"private\" or \"all\""), std::string::npos)
        << bad.error().message;
  }
}

}  // namespace
}  // namespace tether::config
