// A test fixture for end-to-end tests of the tether binary: one real sshd, a private
// state directory, and teardown that stops every daemon by PID.
#pragma once

#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "e2e/testbed.h"

namespace tether::testing {

class TetherTest : public ::testing::Test {
 public:  // free helper functions of the tests use these too
  void SetUp() override {
    Status s = sshd_.Start(sshd_options_);
    ASSERT_TRUE(s.ok()) << s.error().ToString();
  }
  void TearDown() override {
    if (HasFailure()) {
      PrintDaemonLogTail(state_.path(), 6000);
      std::cerr << "sshd log (tail):\n" << sshd_.LogTail();
    }
    StopAllTethers(state_.path());
  }

  // `tether -F <test config> ARGS...`.
  CommandResult Tether(std::vector<std::string> args,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    args.insert(args.begin(), {"-F", sshd_.config_path()});
    return RunTether(state_.path(), args, timeout);
  }
  CommandResult TetherNoConfig(const std::vector<std::string>& args) {
    return RunTether(state_.path(), args);
  }
  // `tether up testhost -L LOCAL:127.0.0.1:TARGET`; returns LOCAL.
  uint16_t UpWithForward(uint16_t target_port) {
    uint16_t local = FreeTcpPort();
    CommandResult r = Tether({"-v", "up", "testhost", "-L",
                              std::to_string(local) + ":127.0.0.1:" + std::to_string(target_port)});
    EXPECT_TRUE(r.ok()) << r.Describe() << "\nsshd log:\n" << sshd_.LogTail();
    EXPECT_FALSE(r.pipes_left_open) << "the daemon kept the caller's stdout/stderr open";
    return local;
  }
  std::string StatePath(const std::string& name) const { return state_.File(name); }
  // testhost's mux socket, and stock OpenSSH through it (no ControlMaster of its own).
  std::string MuxPath() const { return state_.File("testhost.mux"); }
  CommandResult Ssh(std::vector<std::string> args, std::string_view input = {}) {
    std::vector<std::string> argv = {"ssh",
                                     "-F",
                                     sshd_.config_path(),
                                     "-o",
                                     "ControlMaster=no",
                                     "-o",
                                     "ControlPath=" + MuxPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, {}, std::chrono::seconds(60), input);
  }
  // The first host of `status --json`, {} when none is up.
  nlohmann::json Host() {
    auto j = nlohmann::json::parse(Tether({"status", "--json"}).out, nullptr, false);
    if (!j.is_object() || !j.contains("hosts") || j["hosts"].empty()) {
      return nlohmann::json::object();
    }
    return j["hosts"][0];
  }
  // Files in the state directory other than logs.
  std::vector<std::string> StateFiles() const;

  SshdOptions sshd_options_;
  Sshd sshd_;
  TempDir state_;    // TETHER_STATE_DIR: only tether writes here
  TempDir scratch_;  // the test's own files (configs, sockets)
};

}  // namespace tether::testing
