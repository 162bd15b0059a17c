// End-to-end: logins that want a key and a second factor, as compute clusters set them up
// (`AuthenticationMethods publickey,password` or `publickey,keyboard-interactive` through
// PAM), answered through SSH_ASKPASS or at a real terminal (tmux), and refused clearly
// when nobody may be asked (BatchMode, SSH_ASKPASS_REQUIRE=never without a terminal).
//
// A password needs a real account: each test makes a throwaway one (useradd -m, chpasswd)
// with its own authorized key and removes it with its home (userdel -r) in TearDown. The
// PAM test starts sshd through a link with a name of its own, because sshd names its PAM
// service after the name it was started as, and writes /etc/pam.d/<that name> for it.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "e2e/tether_fixture.h"
#include "e2e/tmux.h"

namespace tether::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// `tether up` when nobody answers must give up well inside this.
constexpr seconds kPromptlyRefused{10};
// The bound of one `tether up` run (the command, and the whole chain around it).
constexpr int kUpTimeoutS = 40;
// A line of PAM's (pam_echo) before the password prompt, as a 2FA module's instructions.
constexpr char kPamInfo[] = "Verification for tether-e2e: type the account's password";

// A login account with a password, a home and a shell, made for one test and removed with
// its home. Needs root, as the suite does.
class PasswordAccount {
 public:
  PasswordAccount() {
    static std::atomic<int> counter{0};
    name_ = "tth-login-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    password_ =
        "pw-" + std::to_string(::getpid()) + "-" +
        std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007);
    CommandResult r;
    // useradd takes a lock on the account files; tests side by side may meet there.
    for (int attempt = 0; attempt < 20; ++attempt) {
      r = RunCommand({"useradd", "--create-home", "--shell", "/bin/sh", name_}, {}, seconds(10));
      if (r.ok()) break;
      std::this_thread::sleep_for(milliseconds(100 + 50 * attempt));
    }
    if (!r.ok()) {
      error_ = "useradd " + name_ + ": " + r.Describe();
      return;
    }
    made_ = true;
    for (int attempt = 0; attempt < 20; ++attempt) {
      r = RunCommand({"chpasswd"}, {}, seconds(10), name_ + ":" + password_ + "\n");
      if (r.ok()) break;
      std::this_thread::sleep_for(milliseconds(100 + 50 * attempt));
    }
    if (!r.ok()) {
      error_ = "chpasswd for " + name_ + ": " + r.Describe();
      return;
    }
    struct passwd* pw = ::getpwnam(name_.c_str());
    if (pw == nullptr || pw->pw_uid == 0) {
      error_ = "no password database entry for " + name_;
      return;
    }
    home_ = pw->pw_dir;
    ok_ = true;
  }
  ~PasswordAccount() {
    if (!made_) return;
    for (int attempt = 0; attempt < 20; ++attempt) {
      CommandResult r = RunCommand({"userdel", "--remove", name_}, {}, seconds(10));
      // 6: no such user; 12: the home could not be removed (it may already be gone).
      if (r.ok() || r.exit_code == 6 || r.exit_code == 12) return;
      std::this_thread::sleep_for(milliseconds(100 + 50 * attempt));
    }
    std::fprintf(stderr, "could not remove the test account %s\n", name_.c_str());
  }
  PasswordAccount(const PasswordAccount&) = delete;
  PasswordAccount& operator=(const PasswordAccount&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }
  const std::string& password() const { return password_; }
  const std::string& home() const { return home_; }

 private:
  std::string name_;
  std::string password_;
  std::string home_;
  std::string error_;
  bool made_ = false;
  bool ok_ = false;
};

// A file outside the test's directories (/etc/pam.d/...), removed on destruction.
class ScopedFile {
 public:
  ScopedFile() = default;
  ~ScopedFile() { Remove(); }
  ScopedFile(const ScopedFile&) = delete;
  ScopedFile& operator=(const ScopedFile&) = delete;
  Status Write(const std::string& path, const std::string& content, int mode) {
    path_ = path;
    return WriteFile(path, content, mode);
  }
  void Remove() {
    if (!path_.empty()) ::unlink(path_.c_str());
    path_.clear();
  }

 private:
  std::string path_;
};

// The fixture: a throwaway account, an sshd that wants what ServerLines() says of it, and
// an askpass script whose answers the test picks.
class LoginTest : public TetherTest {
 protected:
  // sshd_config lines of this server, besides where the account's key is.
  virtual std::vector<std::string> ServerLines() const {
    return {"UsePAM no", "PasswordAuthentication yes", "AuthenticationMethods publickey,password"};
  }
  // Called before sshd starts: a PAM test points sshd_options_.binary at its link.
  virtual void PrepareServer() {}

  void SetUp() override {
    account_ = std::make_unique<PasswordAccount>();
    if (!account_->ok()) GTEST_SKIP() << "no throwaway login account: " << account_->error();
    key_ = scratch_.File("account_ed25519");
    CommandResult keygen = RunCommand(
        {"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tether-e2e-login", "-f", key_}, {},
        seconds(20));
    ASSERT_TRUE(keygen.ok()) << keygen.Describe();
    const std::string ssh_dir = account_->home() + "/.ssh";
    ASSERT_EQ(::mkdir(ssh_dir.c_str(), 0700), 0) << ssh_dir;
    ASSERT_TRUE(WriteFile(ssh_dir + "/authorized_keys", ReadFile(key_ + ".pub").value()).ok());
    CommandResult chown = RunCommand(
        {"chown", "-R", account_->name() + ":" + account_->name(), ssh_dir}, {}, seconds(10));
    ASSERT_TRUE(chown.ok()) << chown.Describe();

    sshd_options_.extra_config = {"AuthorizedKeysFile .ssh/authorized_keys"};
    for (const std::string& line : ServerLines()) sshd_options_.extra_config.push_back(line);
    PrepareServer();
    if (HasFatalFailure() || IsSkipped()) return;
    TetherTest::SetUp();
  }

  void TearDown() override {
    TetherTest::TearDown();  // the daemons first, by PID
    tmux_.reset();
    sshd_.Stop();  // its sessions run as the account: userdel refuses a busy account
    pam_file_.Remove();
    account_.reset();
  }

  // An askpass script: the first answer `first`, every later one `later`; it writes each
  // prompt it gets, one a line, to asked_path().
  void WriteAskpass(const std::string& first, const std::string& later) {
    askpass_ = scratch_.File("askpass");
    const std::string count = scratch_.File("askpass.count");
    std::string script = "#!/bin/sh\n";
    script +=
        "n=$(cat '" + count + "' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '" + count + "'\n";
    script += "printf '%s\\n' \"$1\" >> '" + asked_path() + "'\n";
    script += "if [ $n = 1 ]; then echo '" + first + "'; else echo '" + later + "'; fi\n";
    ASSERT_TRUE(WriteFile(askpass_, script, 0700).ok());
  }
  std::string asked_path() const { return scratch_.File("askpass.asked"); }
  std::vector<std::string> Asked() const {
    std::vector<std::string> lines;
    std::string text = ReadFileOrEmpty(asked_path());
    for (size_t at = 0; at < text.size();) {
      size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      lines.push_back(text.substr(at, end - at));
      at = end + 1;
    }
    return lines;
  }

  // A client config for the account's login with `overrides` on top.
  std::string ClientConfig(const std::map<std::string, std::string>& overrides = {}) {
    ClientConfigOptions options;
    options.overrides["User"] = account_->name();
    options.overrides["IdentityFile"] = key_;
    options.overrides["BatchMode"] = "no";
    for (const auto& [k, v] : overrides) options.overrides[k] = v;
    const std::string path = scratch_.File("login.conf");
    EXPECT_TRUE(sshd_.WriteClientConfig(path, options).ok());
    return path;
  }

  // `tether -F CONFIG up testhost` with no controlling terminal (a session of its own),
  // no display, and `env` on top; bounded by `timeout` inside the new session too.
  CommandResult UpWithoutTerminal(const std::string& config, Env env) {
    env["TETHER_STATE_DIR"] = state_.path();
    if (!env.count("DISPLAY")) env["DISPLAY"] = "";
    if (!env.count("WAYLAND_DISPLAY")) env["WAYLAND_DISPLAY"] = "";
    return RunCommand({"setsid", "--wait", "timeout", "-s", "KILL", std::to_string(kUpTimeoutS),
                       TetherBinary(), "-F", config, "up", "testhost"},
                      env, seconds(kUpTimeoutS + 10));
  }
  Env Askpass(const char* require) const {
    return {{"SSH_ASKPASS", askpass_}, {"SSH_ASKPASS_REQUIRE", require}};
  }

  // The account's own name, through the connection `up` made.
  void ExpectLoggedInAsTheAccount(const std::string& config) {
    CommandResult who = RunTether(state_.path(), {"-F", config, "exec", "testhost", "id -un"});
    EXPECT_TRUE(who.ok()) << who.Describe();
    EXPECT_EQ(who.out, account_->name() + "\n") << who.Describe();
  }
  // `status --json` of testhost through `config` (null when it says nothing).
  nlohmann::json HostStatus(const std::string& config) {
    CommandResult r = RunTether(state_.path(), {"-F", config, "status", "--json"});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("hosts") || j["hosts"].empty()) return nullptr;
    return j["hosts"][0];
  }
  // A stand-in notify-send first in PATH, and a display: the daemon's desktop
  // notifications land in notified_path().
  void AddNotifier(Env& env) {
    const std::string bin = scratch_.File("bin");
    ASSERT_EQ(::mkdir(bin.c_str(), 0755), 0);
    ASSERT_TRUE(WriteFile(bin + "/notify-send",
                          "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '" + notified_path() + "'\n", 0755)
                    .ok());
    const char* path = std::getenv("PATH");
    env["PATH"] = bin + ":" + (path != nullptr ? path : "/usr/bin:/bin");
    env["DISPLAY"] = ":99";
  }
  std::string notified_path() const { return scratch_.File("notified"); }
  // Up with an -L forward to `target` (its local port returned in `local`), the password
  // answered by askpass, the desktop notifier in place; the config used.
  std::string UpWithForwardAndNotifier(uint16_t target, uint16_t* local) {
    WriteAskpass(account_->password(), account_->password());
    *local = FreeTcpPort();
    const std::string config = ClientConfig(
        {{"LocalForward", std::to_string(*local) + " 127.0.0.1:" + std::to_string(target)}});
    Env env = Askpass("force");
    AddNotifier(env);
    CommandResult up = UpWithoutTerminal(config, env);
    EXPECT_TRUE(up.ok()) << up.Describe() << "\nsshd log:\n" << sshd_.LogTail();
    return config;
  }
  // Drops the link and waits for the daemon to say it needs a login; its status then.
  nlohmann::json DropAndWaitForNeedsLogin(const std::string& config) {
    sshd_.DropConnections();
    nlohmann::json host;
    EXPECT_TRUE(WaitFor(
        [&] {
          host = HostStatus(config);
          return host.is_object() && host.value("state", "") == "needs-login";
        },
        seconds(30)))
        << host.dump();
    return host;
  }
  std::string SshdLog() const { return sshd_.LogTail(1 << 20); }
  std::string PartialPublickey() const { return "Partial publickey for " + account_->name(); }
  std::string PasswordPrompt() const { return account_->name() + "@127.0.0.1's password: "; }

  std::unique_ptr<PasswordAccount> account_;
  std::string key_;
  std::string askpass_;
  ScopedFile pam_file_;
  std::unique_ptr<Tmux> tmux_;
};

using KeyAndPasswordTest = LoginTest;

TEST_F(KeyAndPasswordTest, AskpassAnswersThePasswordAfterTheKey) {
  WriteAskpass(account_->password(), account_->password());
  const std::string config = ClientConfig();
  CommandResult r = UpWithoutTerminal(config, Askpass("force"));
  ASSERT_TRUE(r.ok()) << r.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  EXPECT_EQ(Asked(), std::vector<std::string>{PasswordPrompt()}) << "asked once, for the password";
  EXPECT_NE(SshdLog().find(PartialPublickey()), std::string::npos) << sshd_.LogTail();
  EXPECT_NE(SshdLog().find("Accepted password for " + account_->name()), std::string::npos)
      << sshd_.LogTail();
  ExpectLoggedInAsTheAccount(config);
}

TEST_F(KeyAndPasswordTest, AWrongPasswordIsAskedAgainWithinNumberOfPasswordPrompts) {
  WriteAskpass("not-the-password", account_->password());
  const std::string config = ClientConfig({{"NumberOfPasswordPrompts", "2"}});
  CommandResult r = UpWithoutTerminal(config, Askpass("force"));
  ASSERT_TRUE(r.ok()) << r.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  EXPECT_EQ(Asked().size(), 2u) << ReadFileOrEmpty(asked_path());
  EXPECT_NE(r.err.find("Permission denied, please try again."), std::string::npos) << r.err;
  EXPECT_EQ(CountOccurrences(SshdLog(), "Failed password for " + account_->name()), 1u)
      << sshd_.LogTail();
  EXPECT_NE(SshdLog().find("Accepted password for " + account_->name()), std::string::npos);
  ExpectLoggedInAsTheAccount(config);
}

TEST_F(KeyAndPasswordTest, WrongPasswordsStopAtNumberOfPasswordPromptsAndSayPartial) {
  WriteAskpass("wrong", "still-wrong");
  CommandResult r =
      UpWithoutTerminal(ClientConfig({{"NumberOfPasswordPrompts", "2"}}), Askpass("force"));
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_EQ(Asked().size(), 2u) << "NumberOfPasswordPrompts 2: " << ReadFileOrEmpty(asked_path());
  EXPECT_NE(r.err.find("permission denied"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("partial success: publickey (" + key_ + ") accepted"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("password (2 times)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the server still accepts: password"), std::string::npos) << r.err;
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(KeyAndPasswordTest, BatchModeFailsAtOnceWithoutAsking) {
  WriteAskpass(account_->password(), account_->password());
  const auto start = std::chrono::steady_clock::now();
  CommandResult r = UpWithoutTerminal(ClientConfig({{"BatchMode", "yes"}}), Askpass("force"));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(took, kPromptlyRefused);
  EXPECT_TRUE(Asked().empty()) << "BatchMode asked askpass: " << ReadFileOrEmpty(asked_path());
  EXPECT_NE(r.err.find("partial success"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not tried: password"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("BatchMode is set"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("BatchMode no"), std::string::npos) << "no advice: " << r.err;
  EXPECT_NE(SshdLog().find(PartialPublickey()), std::string::npos) << sshd_.LogTail();
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(KeyAndPasswordTest, AskpassRequireNeverWithoutATerminalFailsClearly) {
  WriteAskpass(account_->password(), account_->password());
  Env env = Askpass("never");
  env["DISPLAY"] = ":99";  // never rules askpass out even with a display
  const auto start = std::chrono::steady_clock::now();
  CommandResult r = UpWithoutTerminal(ClientConfig(), env);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_LT(std::chrono::steady_clock::now() - start, kPromptlyRefused);
  EXPECT_TRUE(Asked().empty()) << ReadFileOrEmpty(asked_path());
  EXPECT_NE(r.err.find("partial success"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no terminal"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SSH_ASKPASS_REQUIRE=never"), std::string::npos) << r.err;
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(KeyAndPasswordTest, WithoutATerminalOrDisplayAskpassNeedsForce) {
  WriteAskpass(account_->password(), account_->password());
  CommandResult r = UpWithoutTerminal(ClientConfig(), {{"SSH_ASKPASS", askpass_}});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(Asked().empty()) << ReadFileOrEmpty(asked_path());
  EXPECT_NE(r.err.find("SSH_ASKPASS_REQUIRE=force"), std::string::npos) << r.err;
}

TEST_F(KeyAndPasswordTest, AnAskpassThatFailsEndsTheLoginAndSaysHow) {
  askpass_ = scratch_.File("askpass");
  ASSERT_TRUE(WriteFile(askpass_, "#!/bin/sh\nexit 1\n", 0700).ok());
  CommandResult r = UpWithoutTerminal(ClientConfig(), Askpass("force"));
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("partial success"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no answer: SSH_ASKPASS program " + askpass_ + " exited with 1"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(CountOccurrences(SshdLog(), "Failed password"), 0u) << "nothing was sent";
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(KeyAndPasswordTest, AMethodTheConfigurationLeavesOutIsNotTriedAndTheErrorSaysWhy) {
  WriteAskpass(account_->password(), account_->password());
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
      {{{"PreferredAuthentications", "keyboard-interactive,publickey"}},
       "not tried: password: not in PreferredAuthentications"},
      {{{"PasswordAuthentication", "no"}}, "not tried: password: PasswordAuthentication is no"},
  };
  for (const auto& [overrides, why] : cases) {
    CommandResult r = UpWithoutTerminal(ClientConfig(overrides), Askpass("force"));
    EXPECT_EQ(r.exit_code, 1) << r.Describe();
    EXPECT_NE(r.err.find("partial success"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
    EXPECT_TRUE(Asked().empty()) << ReadFileOrEmpty(asked_path());
  }
  EXPECT_EQ(CountOccurrences(SshdLog(), PartialPublickey()), 2u) << sshd_.LogTail();
  EXPECT_TRUE(StateFiles().empty());
}

TEST_F(KeyAndPasswordTest, APasswordTypedAtTheTerminalIsNotEchoed) {
  const std::string config = ClientConfig();
  tmux_ = std::make_unique<Tmux>(scratch_.File("tmux.sock"));
  // The shell stays (sleep) so that the screen can be read after tether exits.
  ASSERT_TRUE(tmux_->Start(
      "env -u SSH_ASKPASS -u SSH_ASKPASS_REQUIRE TETHER_STATE_DIR=" + state_.path() + " " +
      TetherBinary() + " -F " + config + " up testhost; echo EXIT=$?; sleep 60"));
  ASSERT_TRUE(tmux_->WaitForText(PasswordPrompt(), seconds(20))) << tmux_->Screen();
  ASSERT_TRUE(tmux_->Type(account_->password()));
  ASSERT_TRUE(tmux_->WaitForText("EXIT=", seconds(20))) << tmux_->Screen();
  const std::string screen = tmux_->Screen();
  EXPECT_NE(screen.find("EXIT=0"), std::string::npos) << screen;
  EXPECT_EQ(screen.find(account_->password()), std::string::npos) << "echoed:\n" << screen;
  EXPECT_NE(SshdLog().find("Accepted password for " + account_->name()), std::string::npos);
  ExpectLoggedInAsTheAccount(config);
}

// The link drops and the server wants the password again. The daemon does not retry alone
// (a second attempt without a person ends the same way): it says needs-login, sends a
// desktop notification, refuses commands with the advice, and keeps its -L listener. Then
// `tether login`, at a real terminal, logs the same daemon in again: its pid, forwards and
// counters stay, and the password typed is not echoed.
TEST_F(KeyAndPasswordTest, AfterTheLinkDropsTheSameDaemonWaitsForALoginAndResumes) {
  HttpServer http;
  uint16_t local = 0;
  const std::string config = UpWithForwardAndNotifier(http.port(), &local);
  ASSERT_TRUE(HttpGet(local).ok());
  nlohmann::json before = HostStatus(config);
  ASSERT_TRUE(before.is_object());
  const int pid = before.value("pid", 0);

  nlohmann::json waiting = DropAndWaitForNeedsLogin(config);
  ASSERT_EQ(waiting.value("state", ""), "needs-login");
  EXPECT_NE(waiting.value("last_error", "").find("partial success"), std::string::npos)
      << waiting.dump();
  EXPECT_NE(ReadFileOrEmpty(notified_path()).find("tether: testhost needs a login"),
            std::string::npos)
      << "no desktop notification: " << ReadFileOrEmpty(notified_path());
  CommandResult exec = RunTether(state_.path(), {"-F", config, "exec", "testhost", "true"});
  EXPECT_NE(exec.exit_code, 0) << exec.Describe();
  EXPECT_NE(exec.err.find("needs a login: run `tether login testhost`"), std::string::npos)
      << exec.Describe();
  // One attempt after the drop, none since.
  const size_t partials = CountOccurrences(SshdLog(), PartialPublickey());
  EXPECT_EQ(partials, 2u) << sshd_.LogTail();
  std::this_thread::sleep_for(seconds(3));
  EXPECT_EQ(CountOccurrences(SshdLog(), PartialPublickey()), partials) << "retried alone";
  EXPECT_TRUE(ConnectTcp(local).ok()) << "the listener closed";
  CommandResult table = RunTether(state_.path(), {"-F", config, "status"});
  EXPECT_NE(table.out.find("testhost: the server wants a password or a code again: tether login "
                           "testhost"),
            std::string::npos)
      << table.Describe();
  CommandResult doctor = RunTether(state_.path(), {"-F", config, "doctor", "testhost"});
  EXPECT_NE(doctor.out.find("run `tether login testhost`"), std::string::npos) << doctor.Describe();
  EXPECT_NE(doctor.out.find("2FA"), std::string::npos) << doctor.Describe();

  tmux_ = std::make_unique<Tmux>(scratch_.File("tmux.sock"));
  ASSERT_TRUE(tmux_->Start(
      "env -u SSH_ASKPASS -u SSH_ASKPASS_REQUIRE TETHER_STATE_DIR=" + state_.path() + " " +
      TetherBinary() + " -F " + config + " login testhost; echo EXIT=$?; sleep 60"));
  ASSERT_TRUE(tmux_->WaitForText(PasswordPrompt(), seconds(20))) << tmux_->Screen();
  ASSERT_TRUE(tmux_->Type(account_->password()));
  ASSERT_TRUE(tmux_->WaitForText("EXIT=", seconds(20))) << tmux_->Screen();
  const std::string screen = tmux_->Screen();
  EXPECT_NE(screen.find("EXIT=0"), std::string::npos) << screen;
  EXPECT_NE(screen.find("logged in"), std::string::npos) << screen;
  EXPECT_EQ(screen.find(account_->password()), std::string::npos) << "echoed:\n" << screen;

  nlohmann::json after = HostStatus(config);
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(after.value("state", ""), "up") << after.dump();
  EXPECT_EQ(after.value("pid", 0), pid) << "not the same daemon";
  EXPECT_EQ(after.value("reconnects", 0), 1) << after.dump();
  ASSERT_TRUE(HttpGet(local).ok());
  ASSERT_EQ(after["forwards"].size(), 1u) << after.dump();
  EXPECT_GE(HostStatus(config)["forwards"][0].value("total", 0), 2) << "counters kept";
  ExpectLoggedInAsTheAccount(config);
  EXPECT_EQ(ReadFileOrEmpty(state_.File("testhost.log")).find(account_->password()),
            std::string::npos)
      << "the password reached the daemon's log";
}

// A login whose terminal goes away (Ctrl-C at the prompt) gives the attempt up; the
// daemon waits again, and `tether up` of the same host asks (here through askpass) and
// brings the same daemon back.
TEST_F(KeyAndPasswordTest, ALoginLeftAtThePromptIsGivenUpAndUpLogsInAgain) {
  HttpServer http;
  uint16_t local = 0;
  const std::string config = UpWithForwardAndNotifier(http.port(), &local);
  const int pid = HostStatus(config).value("pid", 0);
  ASSERT_EQ(DropAndWaitForNeedsLogin(config).value("state", ""), "needs-login");

  tmux_ = std::make_unique<Tmux>(scratch_.File("tmux.sock"));
  // The shell traps SIGINT (its child gets it by default) to say how `login` ended.
  ASSERT_TRUE(
      tmux_->Start("trap 'true' INT; env -u SSH_ASKPASS -u SSH_ASKPASS_REQUIRE TETHER_STATE_DIR=" +
                   state_.path() + " " + TetherBinary() + " -F " + config +
                   " login testhost; echo EXIT=$?; sleep 60"));
  ASSERT_TRUE(tmux_->WaitForText(PasswordPrompt(), seconds(20))) << tmux_->Screen();
  ASSERT_TRUE(tmux_->Press("C-c"));
  ASSERT_TRUE(tmux_->WaitForText("EXIT=", seconds(10))) << tmux_->Screen();
  EXPECT_TRUE(WaitFor(
      [&] {
        return ReadFileOrEmpty(state_.File("testhost.log")).find("login's client went away") !=
               std::string::npos;
      },
      seconds(10)));
  ASSERT_TRUE(
      WaitFor([&] { return HostStatus(config).value("state", "") == "needs-login"; }, seconds(15)))
      << HostStatus(config).dump();
  EXPECT_EQ(CountOccurrences(SshdLog(), "Failed password"), 0u) << "an answer was sent";

  const size_t asked = Asked().size();
  CommandResult up = UpWithoutTerminal(config, Askpass("force"));
  ASSERT_TRUE(up.ok()) << up.Describe();
  EXPECT_NE(up.out.find("already up (pid " + std::to_string(pid) + ")"), std::string::npos)
      << up.Describe();
  EXPECT_EQ(Asked().size(), asked + 1) << ReadFileOrEmpty(asked_path());
  nlohmann::json after = HostStatus(config);
  EXPECT_EQ(after.value("state", ""), "up") << after.dump();
  EXPECT_EQ(after.value("pid", 0), pid);
  EXPECT_TRUE(HttpGet(local).ok());
}

// A server that takes a password alone.
class PasswordOnlyTest : public LoginTest {
 protected:
  std::vector<std::string> ServerLines() const override {
    return {"UsePAM no", "PasswordAuthentication yes", "PubkeyAuthentication no"};
  }
};

TEST_F(PasswordOnlyTest, AskpassAnswersAndNoKeyIsNeeded) {
  WriteAskpass(account_->password(), account_->password());
  const std::string config = ClientConfig();
  CommandResult r = UpWithoutTerminal(config, Askpass("force"));
  ASSERT_TRUE(r.ok()) << r.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  EXPECT_EQ(Asked(), std::vector<std::string>{PasswordPrompt()});
  EXPECT_EQ(SshdLog().find("Partial"), std::string::npos) << sshd_.LogTail();
  EXPECT_NE(SshdLog().find("Accepted password for " + account_->name()), std::string::npos);
  ExpectLoggedInAsTheAccount(config);
}

// `publickey,keyboard-interactive` with PAM's pam_unix asking for the password: the
// usual 2FA cluster set-up, with a one-time code module in pam_unix's place.
class KeyAndPamTest : public LoginTest {
 protected:
  std::vector<std::string> ServerLines() const override {
    return {"UsePAM yes", "KbdInteractiveAuthentication yes", "PasswordAuthentication no",
            "AuthenticationMethods publickey,keyboard-interactive"};
  }
  void PrepareServer() override {
    auto version = SshdVersion();
    ASSERT_TRUE(version.ok()) << version.error().ToString();
    // From 9.8 authentication runs in sshd-session, started by its own path: whether its
    // PAM service still follows the name sshd was started as is not checked here.
    int major = 0, minor = 0;
    if (std::sscanf(version->c_str(), "OpenSSH_%d.%d", &major, &minor) != 2 ||
        major * 100 + minor >= 908) {
      GTEST_SKIP() << *version << ": its PAM service name is not known to follow argv[0]";
    }
    // A chrooted sshd reads the root's /etc/pam.d, not the file written below.
    if (!SshdRoot().empty()) GTEST_SKIP() << "its PAM configuration is " << SshdRoot() << "'s";
    service_ = "tth-pam-sshd-" + std::to_string(::getpid()) + "-" + account_->name().substr(10);
    const std::string link = scratch_.File(service_);
    ASSERT_EQ(::symlink(SshdBinary().c_str(), link.c_str()), 0) << link;
    sshd_options_.binary = link;
    Status s = pam_file_.Write(
        "/etc/pam.d/" + service_,
        "# tether end-to-end test " + service_ + ", removed when the test ends\n" + PamStack(),
        0644);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }
  // The service's lines: the account's password through pam_unix, after a line of
  // instructions. nodelay: pam_unix's pause after a wrong password would only slow the
  // test down.
  virtual std::string PamStack() const {
    return "auth optional pam_echo.so " + std::string(kPamInfo) +
           "\n"
           "auth required pam_unix.so nodelay\n"
           "account required pam_unix.so\n"
           "session required pam_permit.so\n";
  }
  // sshd sends PAM's information lines with the prompt that follows them, and ssh shows
  // the prompt as sent, after the account's name.
  std::string PamPrompt() const {
    return "(" + account_->name() + "@127.0.0.1) " + kPamInfo + "\nPassword: ";
  }
  // What the askpass script wrote for `n` prompts.
  std::string PamPrompts(int n) const {
    std::string all;
    for (int i = 0; i < n; ++i) all += PamPrompt() + "\n";
    return all;
  }

  std::string service_;
};

TEST_F(KeyAndPamTest, AskpassAnswersPamsPromptAsTheServerSentIt) {
  WriteAskpass(account_->password(), account_->password());
  const std::string config = ClientConfig();
  CommandResult r = UpWithoutTerminal(config, Askpass("force"));
  ASSERT_TRUE(r.ok()) << r.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  EXPECT_EQ(ReadFileOrEmpty(asked_path()), PamPrompts(1));
  EXPECT_NE(SshdLog().find(PartialPublickey()), std::string::npos) << sshd_.LogTail();
  EXPECT_NE(SshdLog().find("Accepted keyboard-interactive/pam for " + account_->name()),
            std::string::npos)
      << sshd_.LogTail();
  ExpectLoggedInAsTheAccount(config);
}

TEST_F(KeyAndPamTest, AWrongAnswerIsAskedAgainAndThenAccepted) {
  WriteAskpass("not-the-password", account_->password());
  const std::string config = ClientConfig({{"NumberOfPasswordPrompts", "2"}});
  CommandResult r = UpWithoutTerminal(config, Askpass("force"));
  ASSERT_TRUE(r.ok()) << r.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  EXPECT_EQ(ReadFileOrEmpty(asked_path()), PamPrompts(2));
  EXPECT_NE(SshdLog().find("Accepted keyboard-interactive/pam for " + account_->name()),
            std::string::npos)
      << sshd_.LogTail();
}

TEST_F(KeyAndPamTest, TheCodeTypedAtTheTerminalIsNotEchoed) {
  const std::string config = ClientConfig();
  tmux_ = std::make_unique<Tmux>(scratch_.File("tmux.sock"));
  ASSERT_TRUE(tmux_->Start(
      "env -u SSH_ASKPASS -u SSH_ASKPASS_REQUIRE TETHER_STATE_DIR=" + state_.path() + " " +
      TetherBinary() + " -F " + config + " up testhost; echo EXIT=$?; sleep 60"));
  ASSERT_TRUE(tmux_->WaitForText("Password: ", seconds(20))) << tmux_->Screen();
  EXPECT_NE(
      tmux_->Screen().find("(" + account_->name() + "@127.0.0.1) " + kPamInfo + "\nPassword: "),
      std::string::npos)
      << tmux_->Screen();
  ASSERT_TRUE(tmux_->Type(account_->password()));
  ASSERT_TRUE(tmux_->WaitForText("EXIT=", seconds(20))) << tmux_->Screen();
  const std::string screen = tmux_->Screen();
  EXPECT_NE(screen.find("EXIT=0"), std::string::npos) << screen;
  EXPECT_EQ(screen.find(account_->password()), std::string::npos) << "echoed:\n" << screen;
  ExpectLoggedInAsTheAccount(config);
}

// `publickey,keyboard-interactive` with a time-based one-time code (Debian's pam_oath, the
// code computed by oathtool from the account's secret): the cluster set-up with a phone
// app, first at `up`, then again when the link has dropped, through `tether login`
// without a terminal (askpass).
class KeyAndTotpTest : public KeyAndPamTest {
 protected:
  void PrepareServer() override {
    KeyAndPamTest::PrepareServer();
    if (HasFatalFailure() || IsSkipped()) return;
    // usersfile: read and rewritten (the last code used) by sshd's PAM, as root.
    ASSERT_TRUE(WriteFile(users_file(),
                          "HOTP/T30/6 " + account_->name() + " - " + std::string(kSecret) + "\n",
                          0600)
                    .ok());
  }
  std::string PamStack() const override {
    // window: codes of a few steps around now are taken, so that each answer may use a
    // step of its own (pam_oath refuses a code used before).
    return "auth required pam_oath.so usersfile=" + users_file() +
           " window=8 digits=6\n"
           "account required pam_permit.so\n"
           "session required pam_permit.so\n";
  }
  std::string users_file() const { return scratch_.File("users.oath"); }
  // An askpass that answers the code of the n-th next 30 s step at its n-th run.
  void WriteCodeAskpass() {
    askpass_ = scratch_.File("askpass");
    const std::string count = scratch_.File("askpass.count");
    ASSERT_TRUE(WriteFile(askpass_,
                          "#!/bin/sh\n"
                          "n=$(cat '" +
                              count + "' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '" +
                              count +
                              "'\n"
                              "printf '%s\\n' \"$1\" >> '" +
                              asked_path() +
                              "'\n"
                              "exec oathtool --totp -N \"now + $((n * 30)) seconds\" " +
                              kSecret + "\n",
                          0700)
                    .ok());
  }
  std::string CodePrompt() const {
    return "(" + account_->name() + "@127.0.0.1) One-time password (OATH) for `" +
           account_->name() + "': ";
  }
  static constexpr char kSecret[] = "7465746865722d65326520746f7470207365637265";
};

TEST_F(KeyAndTotpTest, TheCodeIsAskedAtUpAndAgainThroughLoginAfterTheLinkDrops) {
  if (RunCommand({"oathtool", "--version"}, {}, seconds(10)).exit_code != 0) {
    GTEST_SKIP() << "oathtool is not installed (scripts/setup.sh installs it)";
  }
  WriteCodeAskpass();
  HttpServer http;
  const uint16_t local = FreeTcpPort();
  const std::string config = ClientConfig(
      {{"LocalForward", std::to_string(local) + " 127.0.0.1:" + std::to_string(http.port())}});
  CommandResult up = UpWithoutTerminal(config, Askpass("force"));
  ASSERT_TRUE(up.ok()) << up.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  EXPECT_EQ(Asked(), std::vector<std::string>{CodePrompt()}) << ReadFileOrEmpty(asked_path());
  EXPECT_NE(SshdLog().find("Accepted keyboard-interactive/pam for " + account_->name()),
            std::string::npos)
      << sshd_.LogTail();
  ASSERT_TRUE(HttpGet(local).ok());
  const int pid = HostStatus(config).value("pid", 0);

  ASSERT_EQ(DropAndWaitForNeedsLogin(config).value("state", ""), "needs-login");
  Env env = Askpass("force");
  env["TETHER_STATE_DIR"] = state_.path();
  CommandResult login =
      RunCommand({"setsid", "--wait", "timeout", "-s", "KILL", std::to_string(kUpTimeoutS),
                  TetherBinary(), "-F", config, "login", "testhost"},
                 env, seconds(kUpTimeoutS + 10));
  ASSERT_TRUE(login.ok()) << login.Describe() << "\nsshd log:\n" << sshd_.LogTail();
  EXPECT_NE(login.out.find("logged in"), std::string::npos) << login.Describe();
  EXPECT_EQ(Asked().size(), 2u) << ReadFileOrEmpty(asked_path());
  EXPECT_EQ(
      CountOccurrences(SshdLog(), "Accepted keyboard-interactive/pam for " + account_->name()), 2u)
      << sshd_.LogTail();
  nlohmann::json after = HostStatus(config);
  EXPECT_EQ(after.value("state", ""), "up") << after.dump();
  EXPECT_EQ(after.value("pid", 0), pid);
  EXPECT_TRUE(HttpGet(local).ok());
}

}  // namespace
}  // namespace tether::testing
