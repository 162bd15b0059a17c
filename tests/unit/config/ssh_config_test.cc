#include "config/ssh_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace tether::config {
namespace {

namespace fs = std::filesystem;

// Every test gets its own home under /tmp with a .ssh directory, and never reads the
// real ~/.ssh/config or /etc/ssh/ssh_config.
class SshConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-ssh-config-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
    home_ = root_ + "/home";
    fs::create_directories(home_ + "/.ssh");
    options_.home = home_;
    options_.local_user = "alice";
    options_.system_config = "";
  }

  void TearDown() override { fs::remove_all(root_); }

  // Writes `text` to `path` (relative to the temp root) and returns the full path.
  std::string Write(const std::string& path, const std::string& text) {
    const std::string full = root_ + "/" + path;
    fs::create_directories(fs::path(full).parent_path());
    std::ofstream(full) << text;
    return full;
  }

  std::string WriteUserConfig(const std::string& text) { return Write("home/.ssh/config", text); }

  HostConfig Read(const std::string& destination) {
    auto got = ReadHostConfig(destination, options_);
    EXPECT_TRUE(got.ok()) << got.error().ToString();
    return got.ok() ? *got : HostConfig{};
  }

  std::string ReadError(const std::string& destination) {
    auto got = ReadHostConfig(destination, options_);
    EXPECT_FALSE(got.ok()) << destination << " read without error";
    if (got.ok()) return "";
    EXPECT_EQ(got.error().step, "config");
    return got.error().message;
  }

  std::string root_;
  std::string home_;
  ReadOptions options_;
};

bool HasNoteContaining(const HostConfig& hc, const std::string& text) {
  for (const std::string& note : hc.notes) {
    if (note.find(text) != std::string::npos) return true;
  }
  return false;
}

TEST_F(SshConfigTest, DefaultsWhenNothingIsConfigured) {
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.alias, "gpu");
  EXPECT_EQ(hc.hostname, "gpu");
  EXPECT_EQ(hc.user, "alice");
  EXPECT_EQ(hc.port, 22);
  EXPECT_TRUE(hc.identity_files_default);
  EXPECT_EQ(hc.identity_files,
            (std::vector<std::string>{home_ + "/.ssh/id_ed25519", home_ + "/.ssh/id_ecdsa",
                                      home_ + "/.ssh/id_rsa"}));
  EXPECT_EQ(hc.user_known_hosts_files,
            (std::vector<std::string>{home_ + "/.ssh/known_hosts", home_ + "/.ssh/known_hosts2"}));
  EXPECT_EQ(hc.global_known_hosts_files,
            (std::vector<std::string>{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}));
  EXPECT_FALSE(hc.identities_only);
  EXPECT_EQ(hc.strict_host_key_checking, StrictHostKeyChecking::kAsk);
  EXPECT_EQ(hc.connect_timeout, std::chrono::seconds(0));
  EXPECT_FALSE(hc.batch_mode);
  EXPECT_EQ(hc.identity_agent, "");
  EXPECT_TRUE(hc.proxy_jump.empty());
  EXPECT_EQ(hc.proxy_command, "");
  EXPECT_EQ(hc.server_alive_interval_s, 0);
  EXPECT_EQ(hc.server_alive_count_max, 3);
  EXPECT_TRUE(hc.forwards.empty());
  EXPECT_TRUE(hc.notes.empty());
}

TEST_F(SshConfigTest, CertificateFilesAreAListExpandedLikeIdentityFiles) {
  WriteUserConfig(
      "Host gpu\n"
      "  User bob\n"
      "  CertificateFile ~/.ssh/%r-cert.pub\n"
      "  CertificateFile ~/.ssh/%r-cert.pub\n"
      "Host *\n"
      "  CertificateFile /etc/ssh/site-cert.pub\n");
  EXPECT_EQ(Read("gpu").certificate_files,
            (std::vector<std::string>{home_ + "/.ssh/bob-cert.pub", "/etc/ssh/site-cert.pub"}));
  EXPECT_TRUE(Read("other").certificate_files ==
              std::vector<std::string>{"/etc/ssh/site-cert.pub"});
}

TEST_F(SshConfigTest, HostBlockAppliesToItsAlias) {
  WriteUserConfig(
      "Host gpu\n"
      "  HostName 10.0.0.5\n"
      "  User bob\n"
      "  Port 2222\n"
      "  IdentityFile ~/.ssh/gpu_key\n"
      "  IdentitiesOnly yes\n"
      "Host other\n"
      "  User carol\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.hostname, "10.0.0.5");
  EXPECT_EQ(hc.user, "bob");
  EXPECT_EQ(hc.port, 2222);
  EXPECT_EQ(hc.identity_files, std::vector<std::string>{home_ + "/.ssh/gpu_key"});
  EXPECT_FALSE(hc.identity_files_default);
  EXPECT_TRUE(hc.identities_only);
}

TEST_F(SshConfigTest, HostPatternsMatchWildcardsAndNegationExcludes) {
  WriteUserConfig(
      "Host *.lab !bad.lab\n"
      "  User labuser\n"
      "Host gpu?\n"
      "  Port 2201\n"
      "Host a b,c\n"
      "  Port 2202\n"
      "Host *\n"
      "  User everyone\n");
  struct Case {
    const char* alias;
    const char* user;
    uint16_t port;
  };
  const std::vector<Case> cases = {
      {"node.lab", "labuser", 22}, {"bad.lab", "everyone", 22}, {"gpu1", "everyone", 2201},
      {"gpu12", "everyone", 22},   {"b", "everyone", 2202},     {"c", "everyone", 2202},
      {"GPU1", "everyone", 22},  // Host compares with case, as ssh does
  };
  for (const Case& c : cases) {
    const HostConfig hc = Read(c.alias);
    EXPECT_EQ(hc.user, c.user) << c.alias;
    EXPECT_EQ(hc.port, c.port) << c.alias;
  }
}

TEST_F(SshConfigTest, FirstObtainedValueWins) {
  WriteUserConfig(
      "Host gpu\n"
      "  User first\n"
      "  User second\n"
      "Host *\n"
      "  User third\n"
      "  Port 2000\n"
      "  HostName wildcard.example\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.user, "first");
  EXPECT_EQ(hc.port, 2000);
  EXPECT_EQ(hc.hostname, "wildcard.example");
}

TEST_F(SshConfigTest, UserFileWinsOverSystemFile) {
  WriteUserConfig("Host gpu\n  User fromuser\n");
  options_.system_config = Write("etc/ssh_config", "Host *\n  User fromsystem\n  Port 2022\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.user, "fromuser");
  EXPECT_EQ(hc.port, 2022);
}

TEST_F(SshConfigTest, ConfigFileOptionReadsOnlyThatFile) {
  WriteUserConfig("Host *\n  User fromuser\n");
  options_.system_config = Write("etc/ssh_config", "Host *\n  Port 2022\n");
  options_.config_file = Write("other_config", "Host gpu\n  User fromdashf\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.user, "fromdashf");
  EXPECT_EQ(hc.port, 22);
}

TEST_F(SshConfigTest, MissingConfigFileOptionIsAnError) {
  options_.config_file = root_ + "/does-not-exist";
  EXPECT_NE(ReadError("gpu").find("does-not-exist"), std::string::npos);
}

TEST_F(SshConfigTest, CommandLineOptionsTakePrecedenceOverFiles) {
  WriteUserConfig("Host gpu\n  User fromfile\n  Port 2222\n  LocalForward 1 localhost:1\n");
  options_.options = {"User=fromoption", "Port 3333", "LocalForward 2 localhost:2"};
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.user, "fromoption");
  EXPECT_EQ(hc.port, 3333);
  ASSERT_EQ(hc.forwards.size(), 2u);
  EXPECT_EQ(hc.forwards[0].ToString(), "2:localhost:2");
  EXPECT_EQ(hc.forwards[1].ToString(), "1:localhost:1");
}

TEST_F(SshConfigTest, CommandLineOptionErrorsNameTheOption) {
  options_.options = {"Port=abc"};
  const std::string error = ReadError("gpu");
  EXPECT_NE(error.find("-o \"Port=abc\": Port: \"abc\" is not a port number"), std::string::npos)
      << error;
}

TEST_F(SshConfigTest, CommandLineOptionsCannotOpenBlocks) {
  for (const char* option : {"Host gpu", "Match all", "Include other"}) {
    options_.options = {option};
    EXPECT_NE(ReadError("gpu").find("-o"), std::string::npos) << option;
  }
}

TEST_F(SshConfigTest, DestinationUserAndPortOverrideConfigAndOptions) {
  WriteUserConfig("Host gpu\n  User fromfile\n  Port 2222\n");
  options_.options = {"User=fromoption"};
  const HostConfig hc = Read("dest@gpu:4444");
  EXPECT_EQ(hc.user, "dest");
  EXPECT_EQ(hc.port, 4444);
  EXPECT_EQ(hc.alias, "gpu");
}

TEST_F(SshConfigTest, IncludeReadsGlobsRelativeToTheUserSshDirectory) {
  Write("home/.ssh/conf.d/10-gpu.conf", "Host gpu\n  User fromten\n");
  Write("home/.ssh/conf.d/20-gpu.conf", "Host gpu\n  User fromtwenty\n  Port 2020\n");
  WriteUserConfig(
      "Include conf.d/*.conf\n"
      "Include missing/*.conf does-not-exist\n"
      "Host gpu\n"
      "  User fromconfig\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.user, "fromten");
  EXPECT_EQ(hc.port, 2020);
}

TEST_F(SshConfigTest, IncludeAcceptsAbsoluteAndTildePaths) {
  const std::string absolute = Write("elsewhere/a.conf", "Host gpu\n  Port 2001\n");
  Write("home/b.conf", "Host gpu\n  User fromtilde\n");
  WriteUserConfig("Include " + absolute + " ~/b.conf\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.port, 2001);
  EXPECT_EQ(hc.user, "fromtilde");
}

TEST_F(SshConfigTest, IncludeInAnInactiveBlockDoesNotApply) {
  Write("home/.ssh/inner.conf", "User frominner\nHost nomatch\n  Port 2001\n");
  WriteUserConfig(
      "Host other\n"
      "  Include inner.conf\n"
      "Host gpu\n"
      "  Include inner.conf\n"
      "  Port 2002\n");
  EXPECT_EQ(Read("other").user, "frominner");
  const HostConfig gpu = Read("gpu");
  EXPECT_EQ(gpu.user, "frominner");
  // The Host line inside the included file ends with that file: Port 2002 applies again.
  EXPECT_EQ(gpu.port, 2002);
  const HostConfig none = Read("none");
  EXPECT_EQ(none.user, "alice");
  EXPECT_EQ(none.port, 22);
}

TEST_F(SshConfigTest, IncludeLoopIsAnErrorNotAHang) {
  WriteUserConfig("Include config\n");
  EXPECT_NE(ReadError("gpu").find("nested more than 16 files deep"), std::string::npos);
}

TEST_F(SshConfigTest, MatchHostComparesTheHostNameAlreadySet) {
  WriteUserConfig(
      "Host gpu\n"
      "  HostName GPU.Example.COM\n"
      "Match host *.example.com\n"
      "  User matched\n"
      "Match originalhost gpu\n"
      "  Port 2001\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.hostname, "gpu.example.com");
  EXPECT_EQ(hc.user, "matched");
  EXPECT_EQ(hc.port, 2001);
}

TEST_F(SshConfigTest, MatchCriteriaAreAndedAndCanBeNegated) {
  WriteUserConfig(
      "Match host gpu user bob\n"
      "  Port 2001\n"
      "Match localuser alice !host gpu\n"
      "  Port 2002\n"
      "Match canonical final all\n"
      "  Port 2003\n");
  EXPECT_EQ(Read("bob@gpu").port, 2001);
  EXPECT_EQ(Read("carol@gpu").port, 2003);
  EXPECT_EQ(Read("other").port, 2002);
}

TEST_F(SshConfigTest, MatchUserSeesTheConfiguredUser) {
  WriteUserConfig(
      "Host gpu\n"
      "  User svc\n"
      "Match user svc\n"
      "  IdentityFile ~/.ssh/svc_key\n");
  EXPECT_EQ(Read("gpu").identity_files, std::vector<std::string>{home_ + "/.ssh/svc_key"});
  EXPECT_TRUE(Read("other").identity_files_default);
}

TEST_F(SshConfigTest, MatchExecIsSkippedWithANote) {
  WriteUserConfig(
      "Match exec \"true\" host gpu\n"
      "  Port 2001\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.port, 22);
  EXPECT_TRUE(HasNoteContaining(hc, ":1: Match exec \"true\" is not supported; block skipped"));
}

TEST_F(SshConfigTest, MalformedMatchIsAnError) {
  WriteUserConfig("Match host\n");
  EXPECT_NE(ReadError("gpu").find("config:1: Match: missing patterns after \"host\""),
            std::string::npos);
  WriteUserConfig("Match host gpu all\n");
  EXPECT_NE(ReadError("gpu").find("'all' cannot be combined"), std::string::npos);
}

TEST_F(SshConfigTest, ExpandsTokensAndTilde) {
  char name[256] = {};
  ASSERT_EQ(gethostname(name, sizeof(name) - 1), 0);
  const std::string local_host = name;
  const std::string short_host = local_host.substr(0, local_host.find('.'));
  WriteUserConfig(
      "Host gpu\n"
      "  HostName %h.example.com\n"
      "  User bob\n"
      "  Port 2222\n"
      "  IdentityFile ~/.ssh/%h_%p_%r_%u_%n\n"
      "  IdentityFile %d/keys/%%literal\n"
      "  IdentityFile /k/%l/%L/%i\n"
      "  UserKnownHostsFile ~/.ssh/kh_%n /etc/kh_%h\n"
      "  IdentityAgent ~/agent_%u.sock\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.hostname, "gpu.example.com");
  EXPECT_EQ(hc.identity_files,
            (std::vector<std::string>{
                home_ + "/.ssh/gpu.example.com_2222_bob_alice_gpu",
                home_ + "/keys/%literal",
                "/k/" + local_host + "/" + short_host + "/" + std::to_string(getuid()),
            }));
  EXPECT_EQ(hc.user_known_hosts_files,
            (std::vector<std::string>{home_ + "/.ssh/kh_gpu", "/etc/kh_gpu.example.com"}));
  EXPECT_EQ(hc.identity_agent, home_ + "/agent_alice.sock");
}

TEST_F(SshConfigTest, UnsupportedTokensAreErrorsWithTheLine) {
  WriteUserConfig("Host *\n  IdentityFile ~/.ssh/%C\n");
  EXPECT_NE(ReadError("gpu").find("config:2: IdentityFile: \"~/.ssh/%C\": token %C"),
            std::string::npos);
  WriteUserConfig("HostName %p.example\n");
  EXPECT_NE(ReadError("gpu").find("token %p is not supported here"), std::string::npos);
}

TEST_F(SshConfigTest, IdentityAgentKeepsItsSpecialValues) {
  struct Case {
    const char* value;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"SSH_AUTH_SOCK", ""}, {"none", "none"}, {"$MY_AGENT", "$MY_AGENT"}};
  for (const Case& c : cases) {
    WriteUserConfig(std::string("IdentityAgent ") + c.value + "\n");
    EXPECT_EQ(Read("gpu").identity_agent, c.want) << c.value;
  }
}

TEST_F(SshConfigTest, AcceptsEqualsSignsQuotesCommentsAndAnyKeywordCase) {
  WriteUserConfig(
      "# a comment\n"
      "\n"
      "   HOST=gpu\n"
      "\tuser=bob\n"
      "  PORT = 2222\r\n"
      "  hostname   \"gpu.example.com\"   # trailing comment\n"
      "  IdentityFile \"~/.ssh/my key\"\n"
      "  Ciphers =chacha20-poly1305@openssh.com\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.user, "bob");
  EXPECT_EQ(hc.port, 2222);
  EXPECT_EQ(hc.hostname, "gpu.example.com");
  EXPECT_EQ(hc.identity_files, std::vector<std::string>{home_ + "/.ssh/my key"});
  EXPECT_EQ(hc.ciphers, "chacha20-poly1305@openssh.com");
}

TEST_F(SshConfigTest, ForwardLinesAccumulateWithoutDuplicates) {
  WriteUserConfig(
      "Host gpu\n"
      "  LocalForward 8000 localhost:8000\n"
      "  LocalForward [::1]:8001 [fe80::1]:80\n"
      "  RemoteForward 9000 localhost:9000\n"
      "  RemoteForward 1081\n"
      "  DynamicForward 1080\n"
      "Host *\n"
      "  LocalForward 8000 localhost:8000\n"
      "  LocalForward 8002 /run/app.sock\n");
  const HostConfig hc = Read("gpu");
  std::vector<std::string> flags;
  for (const ForwardSpec& f : hc.forwards) flags.push_back(f.ToFlagString());
  EXPECT_EQ(flags, (std::vector<std::string>{"-L 8000:localhost:8000", "-L [::1]:8001:[fe80::1]:80",
                                             "-R 9000:localhost:9000", "-R 1081", "-D 1080",
                                             "-L 8002:/run/app.sock"}));
  EXPECT_TRUE(hc.forwards[3].dynamic);
}

TEST_F(SshConfigTest, ClearAllForwardingsDropsThem) {
  WriteUserConfig("LocalForward 8000 localhost:8000\n");
  options_.options = {"ClearAllForwardings yes"};
  EXPECT_TRUE(Read("gpu").forwards.empty());
}

TEST_F(SshConfigTest, MalformedLinesNameFileLineAndKeyword) {
  const std::string config = home_ + "/.ssh/config";
  struct Case {
    const char* text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"Host gpu\n\n  Port abc\n", config + ":3: Port: \"abc\" is not a port number"},
      {"Port 0\n", config + ":1: Port: port 0 is out of range (1-65535)"},
      {"Port 70000\n", config + ":1: Port: port 70000 is out of range"},
      {"Port 22 23\n", config + ":1: Port: unexpected \"23\" after the value"},
      {"User\n", config + ":1: User: missing argument"},
      {"BatchMode maybe\n", config + ":1: BatchMode: \"maybe\" is not yes or no"},
      {"StrictHostKeyChecking sometimes\n", config + ":1: StrictHostKeyChecking: \"sometimes\""},
      {"ConnectTimeout soon\n", config + ":1: ConnectTimeout: \"soon\" is not a time"},
      {"HostName \"unterminated\n", config + ":1: HostName: unterminated quote"},
      {"LocalForward 8000\n", config + ":1: LocalForward \"8000\": missing the target"},
      {"ProxyJump a,,b\n", config + ":1: ProxyJump: hop \"\""},
      {"=value\n", config + ":1: no keyword before '='"},
      // Malformed lines are errors even in blocks that do not apply, as in ssh.
      {"Host other\n  Port x\n", config + ":2: Port"},
  };
  for (const Case& c : cases) {
    WriteUserConfig(c.text);
    const std::string error = ReadError("gpu");
    EXPECT_NE(error.find(c.error), std::string::npos) << c.text << "\ngot: " << error;
  }
}

TEST_F(SshConfigTest, ParsesYesNoAndHostKeyCheckingValues) {
  struct Case {
    const char* value;
    StrictHostKeyChecking want;
  };
  const std::vector<Case> cases = {
      {"yes", StrictHostKeyChecking::kYes},
      {"TRUE", StrictHostKeyChecking::kYes},
      {"no", StrictHostKeyChecking::kNo},
      {"off", StrictHostKeyChecking::kNo},
      {"false", StrictHostKeyChecking::kNo},
      {"ask", StrictHostKeyChecking::kAsk},
      {"accept-new", StrictHostKeyChecking::kAcceptNew},
  };
  for (const Case& c : cases) {
    WriteUserConfig(std::string("StrictHostKeyChecking ") + c.value + "\n");
    const HostConfig hc = Read("gpu");
    EXPECT_EQ(hc.strict_host_key_checking, c.want) << c.value;
  }
  WriteUserConfig("BatchMode True\nIdentitiesOnly NO\n");
  const HostConfig hc = Read("gpu");
  EXPECT_TRUE(hc.batch_mode);
  EXPECT_FALSE(hc.identities_only);
}

TEST_F(SshConfigTest, AuthenticationSettingsDefaultToSshsAndTheFirstValueWins) {
  WriteUserConfig("# nothing\n");
  HostConfig hc = Read("gpu");
  EXPECT_TRUE(hc.preferred_authentications.empty());
  EXPECT_TRUE(hc.pubkey_authentication);
  EXPECT_TRUE(hc.kbd_interactive_authentication);
  EXPECT_TRUE(hc.password_authentication);
  EXPECT_EQ(hc.number_of_password_prompts, 3);

  WriteUserConfig(
      "Host gpu\n  PreferredAuthentications Password,keyboard-interactive,gssapi-with-mic\n"
      "  PubkeyAuthentication host-bound\n  ChallengeResponseAuthentication no\n"
      "  KbdInteractiveAuthentication yes\n  PasswordAuthentication no\n"
      "  NumberOfPasswordPrompts 1\n"
      "Host *\n  PreferredAuthentications publickey\n  NumberOfPasswordPrompts 5\n");
  hc = Read("gpu");
  EXPECT_EQ(hc.preferred_authentications,
            (std::vector<std::string>{"password", "keyboard-interactive", "gssapi-with-mic"}));
  EXPECT_TRUE(hc.pubkey_authentication);
  // The old name fills the same slot, first: the later KbdInteractiveAuthentication is dropped.
  EXPECT_FALSE(hc.kbd_interactive_authentication);
  EXPECT_FALSE(hc.password_authentication);
  EXPECT_EQ(hc.number_of_password_prompts, 1);

  WriteUserConfig("PubkeyAuthentication no\n");
  EXPECT_FALSE(Read("gpu").pubkey_authentication);
}

TEST_F(SshConfigTest, MalformedAuthenticationSettingsNameTheLine) {
  const std::string config = home_ + "/.ssh/config";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"PasswordAuthentication maybe\n", ":1: PasswordAuthentication: \"maybe\" is not yes or no"},
      {"PubkeyAuthentication sometimes\n", ":1: PubkeyAuthentication: \"sometimes\" is not yes"},
      {"NumberOfPasswordPrompts many\n", ":1: NumberOfPasswordPrompts: \"many\" is not a count"},
      {"PreferredAuthentications password,,publickey\n",
       ":1: PreferredAuthentications: \"password,,publickey\" has an empty method name"},
  };
  for (const auto& [text, error] : cases) {
    WriteUserConfig(text);
    auto hc = ReadHostConfig("gpu", options_);
    ASSERT_FALSE(hc.ok()) << text;
    EXPECT_NE(hc.error().message.find(config + error), std::string::npos)
        << text << " -> " << hc.error().message;
  }
}

TEST_F(SshConfigTest, ParsesTimesAndKeepaliveSettings) {
  WriteUserConfig("ConnectTimeout 1m30s\nServerAliveInterval 15\nServerAliveCountMax 2\n");
  HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.connect_timeout, std::chrono::seconds(90));
  EXPECT_EQ(hc.server_alive_interval_s, 15);
  EXPECT_EQ(hc.server_alive_count_max, 2);
  WriteUserConfig("ConnectTimeout none\n");
  EXPECT_EQ(Read("gpu").connect_timeout, std::chrono::seconds(0));
}

TEST_F(SshConfigTest, ProxyJumpSplitsHopsAndNoneClearsIt) {
  WriteUserConfig(
      "Host compute\n"
      "  ProxyJump login,bob@bastion:2222,ssh://carol@[::1]:22\n"
      "Host direct\n"
      "  ProxyJump none\n"
      "Host *\n"
      "  ProxyJump fallback\n"
      "  ProxyCommand ssh -W %h:%p gateway\n");
  EXPECT_EQ(Read("compute").proxy_jump,
            (std::vector<std::string>{"login", "bob@bastion:2222", "ssh://carol@[::1]:22"}));
  const HostConfig direct = Read("direct");
  EXPECT_TRUE(direct.proxy_jump.empty());
  EXPECT_EQ(direct.proxy_command, "");  // "none" was obtained first and excludes both
  EXPECT_EQ(Read("other").proxy_jump, std::vector<std::string>{"fallback"});
}

TEST_F(SshConfigTest, ControlPathIsKeptAsWrittenAndTheFirstWins) {
  WriteUserConfig(
      "Host gpu\n"
      "  ControlPath ~/.ssh/sockets/%r@%h-%p\n"
      "Host *\n"
      "  ControlPath /tmp/other-%C\n"
      "Host none-host\n"
      "  ControlPath none\n");
  HostConfig gpu = Read("gpu");
  // Expanded later, as ssh does (config/control_path.h): ~ is the passwd entry's there.
  EXPECT_EQ(gpu.control_path, "~/.ssh/sockets/%r@%h-%p");
  for (const std::string& note : gpu.notes) {
    EXPECT_EQ(note.find("ControlPath"), std::string::npos) << note;
  }
  EXPECT_EQ(Read("other").control_path, "/tmp/other-%C");
  EXPECT_EQ(Read("none-host").control_path, "/tmp/other-%C");  // Host * came first
  WriteUserConfig("Host x\n  ControlPath none\n");
  EXPECT_EQ(Read("x").control_path, "none");
  EXPECT_EQ(Read("y").control_path, "");
}

TEST_F(SshConfigTest, ProxyCommandIsKeptVerbatimAndExcludesProxyJump) {
  WriteUserConfig(
      "Host gpu\n"
      "  ProxyCommand ssh -W %h:%p \"gate way\"\n"
      "  ProxyJump ignored\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.proxy_command, "ssh -W %h:%p \"gate way\"");
  EXPECT_TRUE(hc.proxy_jump.empty());
}

TEST_F(SshConfigTest, KnownHostsFileListsComeFromTheFirstLine) {
  WriteUserConfig(
      "UserKnownHostsFile ~/.ssh/a ~/.ssh/b\n"
      "UserKnownHostsFile ~/.ssh/c\n"
      "GlobalKnownHostsFile /etc/one /etc/two\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.user_known_hosts_files,
            (std::vector<std::string>{home_ + "/.ssh/a", home_ + "/.ssh/b"}));
  EXPECT_EQ(hc.global_known_hosts_files, (std::vector<std::string>{"/etc/one", "/etc/two"}));
}

TEST_F(SshConfigTest, HostKeyAliasIsKeptVerbatimAndTheFirstOneWins) {
  WriteUserConfig(
      "Host gpu\n"
      "  HostKeyAlias gpu-cluster\n"
      "  HostKeyAlias second\n"
      "  UserKnownHostsFile ~/.ssh/kh_%k\n");
  const HostConfig hc = Read("gpu");
  EXPECT_EQ(hc.host_key_alias, "gpu-cluster");
  EXPECT_EQ(hc.user_known_hosts_files, (std::vector<std::string>{home_ + "/.ssh/kh_gpu-cluster"}));
  EXPECT_FALSE(HasNoteContaining(hc, "HostKeyAlias"));
  EXPECT_EQ(Read("other").host_key_alias, "");
}

TEST_F(SshConfigTest, UnknownAndUnusedKeywordsBecomeNotes) {
  WriteUserConfig(
      "Host gpu\n"
      "  FutureOption 42\n"
      "  ForwardAgent yes\n"
      "Host other\n"
      "  ForwardX11 yes\n");
  const HostConfig hc = Read("gpu");
  EXPECT_TRUE(HasNoteContaining(hc, "config:2: unknown keyword \"FutureOption\" ignored"));
  EXPECT_TRUE(HasNoteContaining(hc, "config:3: ForwardAgent yes: not used by tether"));
  EXPECT_FALSE(HasNoteContaining(hc, "ForwardX11"));  // that block does not apply
}

TEST_F(SshConfigTest, IgnoreUnknownSilencesMatchingKeywords) {
  WriteUserConfig(
      "IgnoreUnknown UseKeychain2,Future*\n"
      "FutureOption 1\n"
      "OtherOption 2\n");
  const HostConfig hc = Read("gpu");
  EXPECT_FALSE(HasNoteContaining(hc, "FutureOption"));
  EXPECT_TRUE(HasNoteContaining(hc, "OtherOption"));
}

TEST(ParseDestination, AcceptsUserHostPortAndIpv6Forms) {
  struct Case {
    const char* text;
    const char* user;
    const char* host;
    uint16_t port;
  };
  const std::vector<Case> cases = {
      {"gpu", "", "gpu", 0},
      {"bob@gpu", "bob", "gpu", 0},
      {"gpu:2222", "", "gpu", 2222},
      {"bob@gpu.example.com:2222", "bob", "gpu.example.com", 2222},
      {"user@[::1]:2222", "user", "::1", 2222},
      {"[::1]", "", "::1", 0},
      {"[fe80::1%eth0]:22", "", "fe80::1%eth0", 22},
      {"::1", "", "::1", 0},
      {"fe80::1:2", "", "fe80::1:2", 0},
      {"a@b@host", "a@b", "host", 0},
      {"ssh://bob@gpu:2222", "bob", "gpu", 2222},
      {"ssh://gpu/", "", "gpu", 0},
  };
  for (const Case& c : cases) {
    auto got = ParseDestination(c.text);
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.error().ToString();
    EXPECT_EQ(got->user, c.user) << c.text;
    EXPECT_EQ(got->host, c.host) << c.text;
    EXPECT_EQ(got->port, c.port) << c.text;
  }
}

TEST(ParseDestination, RefusesEmptyPartsAndBadPorts) {
  struct Case {
    const char* text;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {"bob@", "empty host"},
      {"@gpu", "empty user name"},
      {":22", "empty host"},
      {"gpu:", "empty port"},
      {"gpu:abc", "\"abc\" is not a port number"},
      {"gpu:0", "out of range"},
      {"gpu:65536", "out of range"},
      {"[::1", "unbalanced '['"},
      {"[::1]x", "unexpected text after ']'"},
      {"[]:22", "empty host"},
      {"-oProxyCommand=x", "characters ssh does not allow"},
      {"gpu node", "characters ssh does not allow"},
      {"ssh://gpu/path", "no path"},
  };
  for (const Case& c : cases) {
    auto got = ParseDestination(c.text);
    ASSERT_FALSE(got.ok()) << c.text;
    EXPECT_EQ(got.error().step, "config");
    EXPECT_NE(got.error().message.find(c.error), std::string::npos)
        << c.text << ": " << got.error().message;
  }
}

TEST(MatchPattern, MatchesStarAndQuestionMark) {
  struct Case {
    const char* pattern;
    const char* text;
    bool match;
  };
  const std::vector<Case> cases = {
      {"*", "anything", true},  {"*", "", true},           {"gpu?", "gpu1", true},
      {"gpu?", "gpu", false},   {"gpu?", "gpu12", false},  {"*.lab", "a.b.lab", true},
      {"*.lab", "lab", false},  {"a*b*c", "aXbYc", true},  {"a*b*c", "aXbY", false},
      {"exact", "exact", true}, {"exact", "Exact", false}, {"**x", "x", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(MatchPattern(c.pattern, c.text), c.match) << c.pattern << " vs " << c.text;
  }
}

TEST(MatchPatternList, NeedsOnePositiveMatchAndNoNegatedOne) {
  EXPECT_TRUE(MatchPatternList({"a", "b"}, "b"));
  EXPECT_TRUE(MatchPatternList({"x,*.lab"}, "n.lab"));
  EXPECT_FALSE(MatchPatternList({"*.lab,!bad.lab"}, "bad.lab"));
  EXPECT_FALSE(MatchPatternList({"!bad.lab"}, "good.lab"));  // negation alone matches nothing
  EXPECT_FALSE(MatchPatternList({}, "x"));
  EXPECT_TRUE(MatchPatternList({"a b"}, "b"));
}

}  // namespace
}  // namespace tether::config

namespace tether::config {
namespace {

class JumpChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tether-jump-chain-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    root_ = dir;
    std::filesystem::create_directories(root_ + "/home/.ssh");
    options_.home = root_ + "/home";
    options_.local_user = "alice";
    options_.system_config = "";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void Config(const std::string& text) { std::ofstream(root_ + "/home/.ssh/config") << text; }
  // The chain of `destination` as "user@host:port" per hop, or the error.
  std::vector<std::string> Chain(const std::string& destination, std::string* error = nullptr) {
    auto host = ReadHostConfig(destination, options_);
    EXPECT_TRUE(host.ok());
    Status s = ResolveJumpChain(*host, options_);
    if (!s.ok()) {
      if (error != nullptr) *error = s.error().message;
      return {};
    }
    std::vector<std::string> hops;
    for (const auto& h : host->jump_chain) {
      hops.push_back(h.alias + "=" + h.user + "@" + h.hostname + ":" + std::to_string(h.port));
      EXPECT_TRUE(h.proxy_jump.empty());
    }
    return hops;
  }
  std::string root_;
  ReadOptions options_;
};

TEST_F(JumpChainTest, NoProxyJumpMeansNoChain) {
  Config("Host gpu\n  HostName 10.0.0.5\n");
  EXPECT_TRUE(Chain("gpu").empty());
}

TEST_F(JumpChainTest, EachHopIsResolvedAsADestinationOfItsOwn) {
  Config(
      "Host gpu\n  HostName 10.0.0.5\n  ProxyJump login\n"
      "Host login\n  HostName login.example.org\n  User bob\n  Port 2222\n");
  EXPECT_EQ(Chain("gpu"), std::vector<std::string>{"login=bob@login.example.org:2222"});
}

TEST_F(JumpChainTest, HopsComeInConnectionOrderAndAUserOrPortInTheListWins) {
  Config(
      "Host gpu\n  ProxyJump carol@a:2200,b\n"
      "Host a\n  HostName a.example.org\n  Port 22\n"
      "Host b\n  HostName b.internal\n");
  EXPECT_EQ(Chain("gpu"), (std::vector<std::string>{"carol@a:2200=carol@a.example.org:2200",
                                                    "b=alice@b.internal:22"}));
}

TEST_F(JumpChainTest, ASingleHopsOwnProxyJumpIsFollowed) {
  Config(
      "Host node\n  ProxyJump login\n"
      "Host login\n  ProxyJump bastion\n"
      "Host bastion\n  HostName bastion.example.org\n");
  EXPECT_EQ(Chain("node"), (std::vector<std::string>{"bastion=alice@bastion.example.org:22",
                                                     "login=alice@login:22"}));
}

TEST_F(JumpChainTest, ALoopIsAnErrorNotAHang) {
  Config("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n");
  std::string error;
  EXPECT_TRUE(Chain("a", &error).empty());
  EXPECT_NE(error.find("deeper than"), std::string::npos) << error;
}

TEST_F(JumpChainTest, DashOOptionsAreForTheDestinationOnly) {
  Config("Host gpu\n  ProxyJump login\n");
  options_.options = {"Port=2200"};
  EXPECT_EQ(Chain("gpu"), std::vector<std::string>{"login=alice@login:22"});
}

}  // namespace
}  // namespace tether::config
