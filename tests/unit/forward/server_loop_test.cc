// The shell loop kept on the server, against a scripted server side: the test plays the
// script on the other end of the descriptors.
#include "forward/server_loop.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "forward/scripted_server.h"

namespace tether::forward {
namespace {

using namespace std::chrono_literals;

class ServerLoopTest : public ::testing::Test {
 protected:
  // A loop with these bounds (the stall short: a test waits for it, bounded, never
  // measures it).
  void Make(std::chrono::milliseconds stall, std::chrono::milliseconds restart) {
    server_loop_.emplace(
        loop_, server_.Runner(),
        ServerLoop::Settings{"the script", "test loop", 256, stall, restart},
        ServerLoop::Events{[this](uint32_t uid) { greeted_.push_back(uid); },
                           [this](const std::string& why) { unavailable_.push_back(why); },
                           [this](std::string answer) { answers_.push_back(std::move(answer)); },
                           [this](const std::string& why, bool silent) {
                             stopped_.push_back(why);
                             silent_.push_back(silent);
                           }},
        "test");
  }
  // Runs the loop until `done` or 5 s.
  template <typename F>
  bool DriveUntil(F done) {
    for (int i = 0; i < 500 && !done(); ++i) {
      if (!loop_.RunOnce(10ms).ok()) return false;
    }
    return done();
  }

  net::EventLoop loop_;
  ScriptedServer server_{loop_};
  std::optional<ServerLoop> server_loop_;
  std::vector<uint32_t> greeted_;
  std::vector<std::string> unavailable_, answers_, stopped_;
  std::vector<bool> silent_;
};

TEST_F(ServerLoopTest, GreetsPastABannerThenAnswersQuestionsInOrder) {
  Make(1h, 1h);
  ServerLoop& s = *server_loop_;
  EXPECT_FALSE(s.Ask("q\n"));  // nothing is asked before the greeting
  s.Run();
  s.Run();  // one run at a time
  EXPECT_EQ(server_.runs(), 1);
  EXPECT_EQ(server_.command(), "the script");
  server_.Says("Welcome to gpu01\nuid 1000\n");
  ASSERT_EQ(greeted_, std::vector<uint32_t>{1000});
  EXPECT_EQ(s.uid(), 1000u);
  ASSERT_TRUE(s.Ask("a\nb\n"));
  EXPECT_EQ(s.pending(), 2u);
  EXPECT_EQ(server_.Hears(), "a\nb\n");
  server_.Says("one\ntwo\nend\nend\n");
  EXPECT_EQ(answers_, (std::vector<std::string>{"one\ntwo\n", ""}));
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_TRUE(stopped_.empty());
}

TEST_F(ServerLoopTest, ARunThatDoesNotGreetInTimeIsEndedAsSilent) {
  Make(30ms, 0ms);
  server_loop_->Run();
  ASSERT_TRUE(DriveUntil([&] { return !stopped_.empty(); }));
  EXPECT_TRUE(silent_[0]);
  EXPECT_NE(stopped_[0].find("did not answer"), std::string::npos) << stopped_[0];
  EXPECT_FALSE(server_loop_->running());
  server_loop_->Run();
  EXPECT_EQ(server_.runs(), 2);  // asked anew
}

TEST_F(ServerLoopTest, AQuestionLeftUnansweredEndsTheRunAsSilent) {
  Make(30ms, 1h);
  server_loop_->Run();
  server_.Says("uid 7\n");
  ASSERT_TRUE(server_loop_->Ask("q\n"));
  ASSERT_TRUE(DriveUntil([&] { return !stopped_.empty(); }));
  EXPECT_TRUE(silent_[0]);
  server_loop_->Run();
  EXPECT_EQ(server_.runs(), 1);  // not before the restart spacing
}

TEST_F(ServerLoopTest, NoneSaysWhyOnceAndNoRunStartsAgain) {
  Make(1h, 0ms);
  server_loop_->Run();
  server_.Says("none /proc/net/tcp cannot be read\n");
  EXPECT_EQ(unavailable_, std::vector<std::string>{"/proc/net/tcp cannot be read"});
  EXPECT_TRUE(server_loop_->unavailable());
  EXPECT_TRUE(stopped_.empty());
  server_loop_->Run();
  EXPECT_EQ(server_.runs(), 1);
}

TEST_F(ServerLoopTest, WhatTheServerWroteBeforeItsSessionEndedStillCounts) {
  Make(1h, 1h);
  server_loop_->Run();
  server_.Says("uid 1\n");
  ASSERT_TRUE(server_loop_->Ask("q\n"));
  const std::string said = "answer\nend\n";
  ASSERT_EQ(::write(server_.fd(), said.data(), said.size()), static_cast<ssize_t>(said.size()));
  server_.ended("its session ended");  // before the loop read a byte
  EXPECT_EQ(answers_, std::vector<std::string>{"answer\n"});
  ASSERT_EQ(stopped_.size(), 1u);
  EXPECT_EQ(stopped_[0], "its session ended");
  EXPECT_FALSE(silent_[0]);
}

TEST_F(ServerLoopTest, AGarbledGreetingAnAnswerNotAskedOrAnOverlongOneEndsTheRun) {
  Make(1h, 0ms);
  server_loop_->Run();
  server_.Says("uid 10x0\n");
  ASSERT_EQ(stopped_.size(), 1u);
  EXPECT_NE(stopped_[0].find("garbled"), std::string::npos);

  server_loop_->Run();
  server_.Says("uid 1\nend\n");
  ASSERT_EQ(stopped_.size(), 2u);
  EXPECT_NE(stopped_[1].find("not asked"), std::string::npos);

  server_loop_->Run();
  server_.Says("uid 1\n");
  ASSERT_TRUE(server_loop_->Ask("q\n"));
  server_.Says(std::string(300, 'x') + "\n");
  ASSERT_EQ(stopped_.size(), 3u);
  EXPECT_NE(stopped_[2].find("too long"), std::string::npos);
  EXPECT_EQ(server_.runs(), 3);
  EXPECT_TRUE(answers_.empty());
}

TEST_F(ServerLoopTest, ACloseIsQuietAndALateEndOfThatRunIsIgnored) {
  Make(1h, 0ms);
  server_loop_->Run();
  ServerLoop::Ended first = server_.ended;
  server_loop_->Close();
  server_loop_->Run();
  server_.Says("uid 1\n");
  first("the old run ended");
  EXPECT_TRUE(stopped_.empty());
  EXPECT_TRUE(server_loop_->greeted());
}

}  // namespace
}  // namespace tether::forward
