#include "cli/ssh_args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tether::cli {
namespace {

using Args = std::vector<std::string>;

struct Accepted {
  const char* name;
  Args args;
  std::string host;
  Args command;
};

// What rsync, git, scp, sshfs and people send, as the header's examples.
TEST(SshArgs, AcceptsTheCommandLinesToolsSend) {
  const std::vector<Accepted> cases = {
      {"a command", {"gpu", "nvidia-smi"}, "gpu", {"nvidia-smi"}},
      {"a shell", {"gpu"}, "gpu", {}},
      {"rsync -e",
       {"-l", "alice", "gpu", "rsync", "--server", "-e.Lsfx", "."},
       "gpu",
       {"rsync", "--server", "-e.Lsfx", "."}},
      {"git, protocol v2",
       {"-o", "SendEnv=GIT_PROTOCOL", "gpu", "git-upload-pack '/r.git'"},
       "gpu",
       {"git-upload-pack '/r.git'"}},
      {"git with a port",
       {"-p", "2222", "gpu", "git-receive-pack 'r'"},
       "gpu",
       {"git-receive-pack 'r'"}},
      {"scp (OpenSSH 9, sftp)",
       {"-x", "-oPermitLocalCommand=no", "-oClearAllForwardings=yes", "-oRemoteCommand=none",
        "-oRequestTTY=no", "-oControlMaster=no", "-oForwardAgent=no", "-l", "alice", "-s", "--",
        "gpu", "sftp"},
       "gpu",
       {"sftp"}},
      {"sshfs: options after the host",
       {"-x", "-a", "-oClearAllForwardings=yes", "-2", "gpu", "-s", "sftp"},
       "gpu",
       {"sftp"}},
      {"after --, options after the host are the command",
       {"--", "gpu", "-s", "x"},
       "gpu",
       {"-s", "x"}},
      {"bundled flags and attached values",
       {"-qtt", "-p2222", "-lalice", "gpu", "top"},
       "gpu",
       {"top"}},
      {"options after the host belong to the command", {"gpu", "ls", "-la"}, "gpu", {"ls", "-la"}},
      {"harmless -o options",
       {"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "ServerAliveInterval=5",
        "-o", "ConnectTimeout 3", "gpu", "true"},
       "gpu",
       {"true"}},
      {"-e none", {"-e", "none", "gpu", "true"}, "gpu", {"true"}},
      {"-4 -C -v", {"-4", "-C", "-v", "gpu", "true"}, "gpu", {"true"}},
  };
  for (const Accepted& c : cases) {
    auto parsed = ParseSshArgs(c.args);
    ASSERT_TRUE(parsed.ok()) << c.name << ": " << parsed.error().ToString();
    EXPECT_EQ(parsed->host, c.host) << c.name;
    EXPECT_EQ(parsed->command, c.command) << c.name;
  }
}

// The daemon is named by the host alone; the user (and a URI's port) start it, and -l
// or -p given first win, as in ssh.
TEST(SshArgs, SplitsUserAtHostAndSshUrisAsSshDoes) {
  struct Case {
    Args args;
    const char* host;
    const char* user;
    const char* port;
  };
  const std::vector<Case> cases = {
      {{"alice@gpu", "true"}, "gpu", "alice", ""},
      {{"a@b@gpu"}, "gpu", "a@b", ""},
      {{"-l", "bob", "alice@gpu"}, "gpu", "bob", ""},
      {{"ssh://alice@gpu:2222", "true"}, "gpu", "alice", "2222"},
      {{"-p", "22", "ssh://gpu:2222"}, "gpu", "", "22"},
      {{"ssh://gpu"}, "gpu", "", ""},
      {{"gpu"}, "gpu", "", ""},
  };
  for (const Case& c : cases) {
    auto parsed = ParseSshArgs(c.args);
    ASSERT_TRUE(parsed.ok()) << c.args[0] << ": " << parsed.error().ToString();
    EXPECT_EQ(parsed->host, c.host) << c.args.back();
    EXPECT_EQ(parsed->user, c.user) << c.args.back();
    EXPECT_EQ(parsed->port, c.port) << c.args.back();
  }
  for (const char* bad : {"@gpu", "alice@", "ssh://"}) {
    auto parsed = ParseSshArgs({bad, "true"});
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.error().message.find("destination"), std::string::npos)
        << parsed.error().message;
  }
}

TEST(SshArgs, HonoursTheOptionsThatApplyToOneSession) {
  auto scp = ParseSshArgs({"-l", "alice", "-p", "2222", "-n", "-s", "gpu", "sftp"});
  ASSERT_TRUE(scp.ok()) << scp.error().ToString();
  EXPECT_EQ(scp->user, "alice");
  EXPECT_EQ(scp->port, "2222");
  EXPECT_TRUE(scp->stdin_null);
  EXPECT_TRUE(scp->subsystem);

  auto o = ParseSshArgs({"-o", "User=bob", "-o", "Port=22", "-o", "RequestTTY=force", "-o",
                         "SendEnv=GIT_* LANG", "-o", "SetEnv=FOO=bar", "gpu"});
  ASSERT_TRUE(o.ok()) << o.error().ToString();
  EXPECT_EQ(o->user, "bob");
  EXPECT_EQ(o->port, "22");
  EXPECT_TRUE(o->force_tty);
  EXPECT_EQ(o->send_env, (Args{"GIT_*", "LANG"}));
  EXPECT_EQ(o->set_env, (Args{"FOO=bar"}));

  auto tty = ParseSshArgs({"-T", "gpu"});
  ASSERT_TRUE(tty.ok());
  EXPECT_TRUE(tty->no_tty);
  auto git_probe = ParseSshArgs({"-G", "gpu"});
  ASSERT_TRUE(git_probe.ok());
  EXPECT_TRUE(git_probe->print_config);
}

TEST(SshArgs, NotesEveryOptionItIgnores) {
  auto parsed = ParseSshArgs({"-C", "-o", "BatchMode=yes", "-E", "/tmp/log", "gpu"});
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->notes.size(), 3u);
  EXPECT_NE(parsed->notes[0].find("-C: ignored"), std::string::npos) << parsed->notes[0];
  EXPECT_NE(parsed->notes[1].find("-o BatchMode=yes: ignored"), std::string::npos);
  EXPECT_NE(parsed->notes[2].find("-E /tmp/log: ignored"), std::string::npos);
}

struct Refused {
  const char* name;
  Args args;
  const char* message;  // names the option and why
  const char* hint;     // what to do instead
};

TEST(SshArgs, RefusesWhatItCannotHonourNamingTheOptionAndWhatToDo) {
  const std::vector<Refused> cases = {
      {"-i",
       {"-i", "~/.ssh/other", "gpu"},
       "-i ~/.ssh/other is not honoured: the shared connection",
       "IdentityFile ~/.ssh/other"},
      {"-J", {"-J", "login", "gpu"}, "-J login is not honoured", "ProxyJump login"},
      {"-F",
       {"-F", "/tmp/cfg", "gpu"},
       "-F /tmp/cfg is not honoured",
       "tether -F /tmp/cfg up HOST"},
      {"-c", {"-c", "aes128-ctr", "gpu"}, "-c aes128-ctr is not honoured", "Ciphers aes128-ctr"},
      {"-o IdentityFile",
       {"-o", "IdentityFile=/k", "gpu"},
       "-o IdentityFile=/k is not honoured",
       "IdentityFile /k"},
      {"-o ProxyJump",
       {"-oProxyJump=login", "gpu"},
       "-o ProxyJump=login is not honoured",
       "ProxyJump login"},
      {"-o ProxyCommand", {"-o", "ProxyCommand nc %h %p", "gpu"}, "ProxyCommand", "ProxyCommand"},
      {"-o HostName", {"-o", "HostName=10.0.0.5", "gpu"}, "is not honoured", "HostName 10.0.0.5"},
      {"-A",
       {"-A", "gpu"},
       "-A is not supported: tether's shared connection forwards no agent",
       "plain ssh"},
      {"-X", {"-X", "gpu"}, "-X is not supported", "plain ssh"},
      {"-o ForwardAgent=yes",
       {"-o", "ForwardAgent=yes", "gpu"},
       "ForwardAgent=yes is not supported",
       "plain ssh"},
      {"-L",
       {"-L", "8000:localhost:8000", "gpu"},
       "-L 8000:localhost:8000 is not supported",
       "tether forward HOST -L 8000:localhost:8000"},
      {"-R",
       {"-R8000:localhost:80", "gpu"},
       "-R 8000:localhost:80 is not supported",
       "tether forward HOST -R 8000:localhost:80"},
      {"-D", {"-D", "1080", "gpu"}, "-D 1080 is not supported", "tether forward HOST -D 1080"},
      {"-o LocalForward",
       {"-o", "LocalForward=1 h:2", "gpu"},
       "is not supported",
       "tether forward"},
      {"-N", {"-N", "gpu"}, "-N is not supported", "tether forward"},
      {"-f", {"-f", "gpu", "sleep 1"}, "-f is not supported", "&"},
      {"-W", {"-W", "h:22", "gpu"}, "-W h:22 is not supported", "ssh-config"},
      {"-O",
       {"-O", "exit", "gpu"},
       "-O is not supported: tether is the connection's master",
       "tether status"},
      {"-S", {"-S", "/tmp/ctl", "gpu"}, "-S is not supported", "tether status"},
      {"-M", {"-M", "gpu"}, "-M is not supported", "tether"},
      {"-o RemoteCommand",
       {"-o", "RemoteCommand=ls", "gpu"},
       "RemoteCommand=ls is not supported",
       "tether ssh HOST CMD"},
      {"an unknown -o",
       {"-o", "Frobnicate=yes", "gpu"},
       "-o Frobnicate=yes: not an option",
       "docs/cli.md"},
      {"an unknown flag", {"-Z", "gpu"}, "-Z: not an option", "docs/cli.md"},
      {"a value missing", {"-p"}, "-p needs a value", ""},
      {"no destination", {"-t"}, "no destination", "usage"},
      {"-s without a subsystem", {"-s", "gpu"}, "-s needs a subsystem name", ""},
      {"a bad RequestTTY", {"-o", "RequestTTY=maybe", "gpu"}, "RequestTTY is yes, no", ""},
  };
  for (const Refused& c : cases) {
    auto parsed = ParseSshArgs(c.args);
    ASSERT_FALSE(parsed.ok()) << c.name;
    EXPECT_EQ(parsed.error().step, "ssh") << c.name;
    EXPECT_NE(parsed.error().message.find(c.message), std::string::npos)
        << c.name << ": " << parsed.error().message;
    EXPECT_NE(parsed.error().hint.find(c.hint), std::string::npos)
        << c.name << ": " << parsed.error().hint;
  }
}

TEST(SshArgs, SendsTheVariablesSendEnvPatternsMatch) {
  char a[] = "GIT_PROTOCOL=version=2";
  char b[] = "LANG=C.UTF-8";
  char c[] = "SECRET=x";
  char* env[] = {a, b, c, nullptr};
  EXPECT_EQ(SelectSendEnv({"GIT_*"}, env), (Args{"GIT_PROTOCOL=version=2"}));
  EXPECT_EQ(SelectSendEnv({"LANG", "GIT_PROTOCOL"}, env),
            (Args{"GIT_PROTOCOL=version=2", "LANG=C.UTF-8"}));
  EXPECT_TRUE(SelectSendEnv({"NOTHING"}, env).empty());
  EXPECT_TRUE(SelectSendEnv({"GIT_*"}, nullptr).empty());
}

}  // namespace
}  // namespace tether::cli
