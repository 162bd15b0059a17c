// The main link's life without a server: a fake clock (the monotonic and the boot clock
// apart, so that sleep can be faked), a flaky dialer and a fake link that says whether
// bytes arrived and whether the server's TCP acknowledges. Time moves in kLinkTick steps
// as the daemon's tick does; no test waits on the real clock.
#include "daemon/link_supervisor.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <vector>

namespace tether::daemon {
namespace {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

class FakeClock : public LinkSupervisor::Clock {
 public:
  std::chrono::steady_clock::time_point Now() override { return now_; }
  std::chrono::nanoseconds BootTime() override { return boot_; }
  TimerId After(Millis delay, std::function<void()> fn) override {
    TimerId id = next_id_++;
    timers_[id] = Timer{now_ + delay, std::move(fn)};
    delays.push_back(delay);
    return id;
  }
  void Cancel(TimerId id) override { cancelled += timers_.erase(id); }

  // Both clocks run on by `d` (the machine is awake); timers that fall due run.
  void Advance(Millis d) {
    now_ += d;
    boot_ += d;
    RunDue();
  }
  // The machine sleeps for `d`: only the boot clock runs.
  void Sleep(Millis d) { boot_ += d; }
  bool pending() const { return !timers_.empty(); }

  std::vector<Millis> delays;  // of every timer asked for, in order
  int cancelled = 0;

 private:
  struct Timer {
    std::chrono::steady_clock::time_point due;
    std::function<void()> fn;
  };
  void RunDue() {
    for (bool ran = true; ran;) {
      ran = false;
      for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.due > now_) continue;
        auto fn = std::move(it->second.fn);
        timers_.erase(it);
        fn();
        ran = true;
        break;
      }
    }
  }

  std::chrono::steady_clock::time_point now_{std::chrono::hours(1)};
  std::chrono::nanoseconds boot_{std::chrono::hours(1)};
  TimerId next_id_ = 1;
  std::map<TimerId, Timer> timers_;
};

// Dials fail with `fail_with` (a success when it is unset) and probes get through while
// `reachable`; each answer comes at the next Deliver(), not inside the call.
class FlakyDialer : public LinkSupervisor::Dialer {
 public:
  void Dial(UniqueFd first_hop, ssh::Prompter* prompter, Dialed done) override {
    if (dial_) return;
    dials.push_back(first_hop.valid());
    prompters.push_back(prompter);
    dial_ = std::move(done);
  }
  bool dialing() const override { return static_cast<bool>(dial_); }
  void Probe(Millis, Probed done) override {
    ++probes;
    probe_.push_back(std::move(done));
  }

  void Deliver() {
    std::deque<Probed> probes_done;
    probes_done.swap(probe_);
    for (auto& done : probes_done) {
      if (reachable) {
        done(UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)));
      } else {
        done(MakeError(ErrorCode::kConnect, "connect: timed out"));
      }
    }
    if (!dial_) return;
    Dialed done = std::move(dial_);
    dial_ = nullptr;
    if (fail_with) {
      done(MakeError(*fail_with, "login failed"));
    } else {
      done(std::unique_ptr<ssh::Session>());  // the fake owner takes no real session
    }
  }

  std::optional<ErrorCode> fail_with;
  bool reachable = false;
  std::vector<bool> dials;                // each attempt: whether it came with the probe's socket
  std::vector<ssh::Prompter*> prompters;  // each attempt: who it may ask
  int probes = 0;

 private:
  Dialed dial_;
  std::deque<Probed> probe_;
};

class FakeOwner : public LinkSupervisor::Owner {
 public:
  Status LinkUp(std::unique_ptr<ssh::Session>, Millis dead_after) override {
    ++ups;
    up = true;
    bytes_in = 0;
    last_dead_after = dead_after;
    return Status::Ok();
  }
  void LinkLost(const std::string& why) override {
    up = false;
    lost.push_back(why);
  }
  uint64_t LinkBytesIn() const override { return bytes_in; }
  void SendKeepalive() override { ++keepalives; }
  std::optional<bool> PeerAcknowledges(Millis) override { return acks; }
  void NeedsLogin(const std::string& why) override { needs_login.push_back(why); }

  bool up = false;
  std::vector<std::string> needs_login;
  int ups = 0;
  std::vector<std::string> lost;
  uint64_t bytes_in = 0;
  int keepalives = 0;
  std::optional<bool> acks = false;
  Millis last_dead_after{0};
};

// The daemon's tick, as in host_daemon.h.
constexpr Millis kTick{250};

class LinkSupervisorTest : public ::testing::Test {
 protected:
  LinkSupervisorTest() {
    host_.alias = "gpu";
    supervisor_ = std::make_unique<LinkSupervisor>(host_, clock_, dialer_, owner_);
  }

  void Start() { ASSERT_TRUE(supervisor_->Start(nullptr).ok()); }
  // One tick of the daemon: time runs on, answers come in, the supervisor looks.
  void Step() {
    clock_.Advance(kTick);
    dialer_.Deliver();
    if (server_talks_ && owner_.up) owner_.bytes_in += 100;
    supervisor_->Tick();
  }
  void RunFor(Millis d) {
    for (Millis t{0}; t < d; t += kTick) Step();
  }
  // Runs until the supervisor asks for its next reconnect timer; its delay.
  Millis NextReconnectDelay() {
    size_t asked = clock_.delays.size();
    for (int i = 0; i < 1000 && clock_.delays.size() == asked; ++i) Step();
    EXPECT_GT(clock_.delays.size(), asked);
    return clock_.delays.back();
  }

  void ExpectNoProbingAfter(ErrorCode code);

  config::HostConfig host_;
  FakeClock clock_;
  FlakyDialer dialer_;
  FakeOwner owner_;
  bool server_talks_ = false;
  std::unique_ptr<LinkSupervisor> supervisor_;
};

TEST_F(LinkSupervisorTest, ASilentLinkIsCalledDeadWhenTheKeepaliveGivesUp) {
  Start();
  EXPECT_EQ(owner_.last_dead_after, 6s);  // 2 s x 3: the default keepalive
  RunFor(5s);
  EXPECT_TRUE(owner_.lost.empty());
  EXPECT_GT(owner_.keepalives, 0);  // probes went out meanwhile
  RunFor(1s + kTick);               // and no reconnect has come back yet
  ASSERT_EQ(owner_.lost.size(), 1u);
  EXPECT_EQ(owner_.lost[0], "no answer from the server for 6 s");
  EXPECT_FALSE(supervisor_->up());
  EXPECT_EQ(supervisor_->state(), LinkState::kReconnecting);
  EXPECT_EQ(supervisor_->last_error(), owner_.lost[0]);
}

TEST_F(LinkSupervisorTest, ALinkThatTalksIsKeptAndServerAliveSetsTheBound) {
  host_.server_alive_interval_s = 5;
  host_.server_alive_count_max = 2;
  supervisor_ = std::make_unique<LinkSupervisor>(host_, clock_, dialer_, owner_);
  Start();
  EXPECT_EQ(owner_.last_dead_after, 10s);
  server_talks_ = true;
  RunFor(60s);
  EXPECT_TRUE(owner_.lost.empty());
  EXPECT_EQ(owner_.keepalives, 0);  // bytes keep coming: no probe needed
  server_talks_ = false;
  RunFor(9s);
  EXPECT_TRUE(owner_.lost.empty());
  RunFor(2s);
  EXPECT_EQ(owner_.lost.size(), 1u);
}

TEST_F(LinkSupervisorTest, ALinkThatEndsIsDroppedOnceAndReconnected) {
  Start();
  supervisor_->Lost("the server closed the connection");
  supervisor_->Lost("again");  // already down: nothing
  ASSERT_EQ(owner_.lost.size(), 1u);
  EXPECT_EQ(supervisor_->state(), LinkState::kReconnecting);
  RunFor(1s);  // the first delay is 0.5 s at most 20% more
  EXPECT_EQ(dialer_.dials.size(), 1u);
  EXPECT_TRUE(supervisor_->up());
  EXPECT_EQ(owner_.ups, 2);
  EXPECT_EQ(supervisor_->reconnects(), 1);
  EXPECT_EQ(supervisor_->state(), LinkState::kUp);
}

TEST_F(LinkSupervisorTest, BackoffGrowsBetweenFailedDialsAndResetsAfterASuccess) {
  Start();
  dialer_.fail_with = ErrorCode::kConnect;
  supervisor_->Lost("eof");
  Millis first = clock_.delays.back();
  EXPECT_GE(first, 400ms);
  EXPECT_LE(first, 600ms);
  Millis second = NextReconnectDelay();
  EXPECT_GE(second, 800ms);
  EXPECT_LE(second, 1200ms);
  Millis third = NextReconnectDelay();
  EXPECT_GE(third, 1600ms);
  EXPECT_LE(third, 2400ms);
  EXPECT_EQ(supervisor_->last_error(), "connect: login failed");

  dialer_.fail_with.reset();
  for (int i = 0; i < 100 && !supervisor_->up(); ++i) Step();
  ASSERT_TRUE(supervisor_->up());
  supervisor_->Lost("eof");
  Millis after_success = clock_.delays.back();
  EXPECT_GE(after_success, 400ms);
  EXPECT_LE(after_success, 600ms);
}

TEST_F(LinkSupervisorTest, AProbeThatGetsThroughStartsTheReconnectAtOnceOnItsConnection) {
  Start();
  dialer_.fail_with = ErrorCode::kConnect;
  supervisor_->Lost("eof");
  for (int i = 0; i < 4; ++i) NextReconnectDelay();  // the next attempt is seconds away
  ASSERT_TRUE(clock_.pending());
  size_t dials = dialer_.dials.size();
  int probes = dialer_.probes;
  RunFor(2s);
  EXPECT_GT(dialer_.probes, probes);  // the path is probed while the timer runs
  EXPECT_EQ(dialer_.dials.size(), dials);

  dialer_.fail_with.reset();
  dialer_.reachable = true;
  int cancelled = clock_.cancelled;
  RunFor(kReachabilityProbe + kTick * 4);
  ASSERT_EQ(dialer_.dials.size(), dials + 1);
  EXPECT_TRUE(dialer_.dials.back());           // logged in on the probe's connection
  EXPECT_EQ(clock_.cancelled, cancelled + 1);  // the backoff's timer was not waited for
  EXPECT_TRUE(supervisor_->up());
}

TEST_F(LinkSupervisorTest, WakingFromSleepChecksTheLinkAtOnce) {
  Start();
  server_talks_ = true;
  RunFor(2s);
  int keepalives = owner_.keepalives;
  clock_.Sleep(10min);
  server_talks_ = false;
  Step();
  EXPECT_GT(owner_.keepalives, keepalives);  // asked right away, not at the next interval
  EXPECT_TRUE(owner_.lost.empty());
  // Judged afresh: silent for one interval after the wake-up, it is dead.
  RunFor(Keepalive::kDefaultInterval + kTick);
  EXPECT_EQ(owner_.lost.size(), 1u);
}

TEST_F(LinkSupervisorTest, WakingFromSleepRedialsAtOnceWithTheBackoffReset) {
  Start();
  dialer_.fail_with = ErrorCode::kConnect;
  supervisor_->Lost("eof");
  for (int i = 0; i < 5; ++i) NextReconnectDelay();
  ASSERT_GT(clock_.delays.back(), 4s);
  int cancelled = clock_.cancelled;
  clock_.Sleep(1h);
  Step();
  EXPECT_EQ(clock_.cancelled, cancelled + 1);
  EXPECT_GE(clock_.delays.back(), 400ms);
  EXPECT_LE(clock_.delays.back(), 600ms);
}

TEST_F(LinkSupervisorTest, AStopIsNotTakenForADeadLink) {
  Start();
  server_talks_ = true;
  RunFor(1s);
  server_talks_ = false;
  clock_.Advance(30s);  // SIGSTOP: the tick comes half a minute late, on both clocks
  supervisor_->Tick();  // before what arrived meanwhile is read
  EXPECT_TRUE(owner_.lost.empty());
  server_talks_ = true;
  RunFor(10s);
  EXPECT_TRUE(owner_.lost.empty());
}

TEST_F(LinkSupervisorTest, ABusyServerIsGivenItsGraceThenDropped) {
  Start();
  owner_.acks = true;  // sshd says nothing, its TCP acknowledges
  RunFor(6s + kTick);
  EXPECT_TRUE(owner_.lost.empty());
  RunFor(kBusyServerGrace - 2s);
  EXPECT_TRUE(owner_.lost.empty());
  RunFor(4s);
  ASSERT_EQ(owner_.lost.size(), 1u);
  // The silence told is the keepalive's bound plus the grace.
  EXPECT_EQ(owner_.lost[0], "no answer from the server for 66 s");
}

TEST_F(LinkSupervisorTest, AServerThatSpeaksAgainEndsTheGrace) {
  Start();
  owner_.acks = true;
  RunFor(40s);
  owner_.bytes_in += 1;  // an answer
  RunFor(40s);           // a new grace would start at the next verdict, not carry the old one
  EXPECT_TRUE(owner_.lost.empty());
}

TEST_F(LinkSupervisorTest, APathThatAcknowledgesNothingIsDroppedWithoutGrace) {
  Start();
  owner_.acks = std::nullopt;  // cannot tell: as a dead path
  RunFor(6s + kTick * 2);
  EXPECT_EQ(owner_.lost.size(), 1u);
}

// After a login that failed for want of a key or a host key, the path is not probed (a
// working server would be hammered for nothing) until a network failure comes again; the
// link says needs-auth until a login works.
void LinkSupervisorTest::ExpectNoProbingAfter(ErrorCode code) {
  Start();
  dialer_.fail_with = code;
  dialer_.reachable = true;
  supervisor_->Lost("eof");
  NextReconnectDelay();  // the first attempt failed
  EXPECT_EQ(supervisor_->state(), LinkState::kNeedsAuth);
  int probes = dialer_.probes;
  NextReconnectDelay();
  RunFor(kReachabilityProbe * 2);
  EXPECT_EQ(dialer_.probes, probes);

  dialer_.fail_with = ErrorCode::kConnect;
  NextReconnectDelay();
  RunFor(kReachabilityProbe + kTick);
  EXPECT_GT(dialer_.probes, probes);
  EXPECT_EQ(supervisor_->state(), LinkState::kNeedsAuth);
  dialer_.fail_with.reset();
  for (int i = 0; i < 100 && !supervisor_->up(); ++i) Step();
  EXPECT_EQ(supervisor_->state(), LinkState::kUp);
}

TEST_F(LinkSupervisorTest, AnAuthFailureStopsProbing) { ExpectNoProbingAfter(ErrorCode::kAuth); }

TEST_F(LinkSupervisorTest, AHostKeyFailureStopsProbing) {
  ExpectNoProbingAfter(ErrorCode::kHostKey);
}

// A reconnect that needs a person's answer is not retried: the owner is told once, the
// state says needs-login, nothing is dialled or probed until Login().
TEST_F(LinkSupervisorTest, ALoginThatNeedsAPersonWaitsForOne) {
  Start();
  dialer_.fail_with = ErrorCode::kNeedsLogin;
  dialer_.reachable = true;
  supervisor_->Lost("eof");
  RunFor(5s);  // the first attempt failed
  ASSERT_EQ(dialer_.dials.size(), 1u);
  EXPECT_EQ(supervisor_->state(), LinkState::kNeedsLogin);
  ASSERT_EQ(owner_.needs_login.size(), 1u);
  EXPECT_NE(owner_.needs_login[0].find("login failed"), std::string::npos);
  const int probes = dialer_.probes;
  RunFor(5min);
  EXPECT_EQ(dialer_.dials.size(), 1u) << "retried without a person";
  EXPECT_EQ(dialer_.probes, probes);
  EXPECT_EQ(owner_.needs_login.size(), 1u);

  // A person asks: the dial asks them, and the link comes back on the same supervisor.
  ssh::NoPrompter person;
  std::vector<Status> ended;
  dialer_.fail_with.reset();
  supervisor_->Login(person, [&](Status s) { ended.push_back(std::move(s)); });
  EXPECT_TRUE(supervisor_->logging_in());
  ASSERT_EQ(dialer_.prompters.size(), 2u);
  EXPECT_EQ(dialer_.prompters[0], nullptr) << "a reconnect asks nobody";
  EXPECT_EQ(dialer_.prompters[1], &person);
  Step();
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_TRUE(ended[0].ok());
  EXPECT_TRUE(supervisor_->up());
  EXPECT_EQ(supervisor_->state(), LinkState::kUp);
  EXPECT_EQ(supervisor_->reconnects(), 1);
  EXPECT_FALSE(supervisor_->logging_in());
}

// A person's answers refused: the link waits for them again rather than retrying alone;
// a network failure meanwhile goes back to reconnecting.
TEST_F(LinkSupervisorTest, ARefusedLoginWaitsForThePersonAgain) {
  Start();
  dialer_.fail_with = ErrorCode::kNeedsLogin;
  supervisor_->Lost("eof");
  RunFor(2s);
  ASSERT_EQ(supervisor_->state(), LinkState::kNeedsLogin);
  ssh::NoPrompter person;
  std::vector<Status> ended;
  dialer_.fail_with = ErrorCode::kAuth;
  supervisor_->Login(person, [&](Status s) { ended.push_back(std::move(s)); });
  Step();
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_FALSE(ended[0].ok());
  EXPECT_EQ(supervisor_->state(), LinkState::kNeedsLogin);
  const size_t dials = dialer_.dials.size();
  RunFor(2min);
  EXPECT_EQ(dialer_.dials.size(), dials);
  EXPECT_EQ(owner_.needs_login.size(), 1u) << "the person is there: no second notice";

  dialer_.fail_with = ErrorCode::kConnect;
  supervisor_->Login(person, [&](Status s) { ended.push_back(std::move(s)); });
  Step();
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_EQ(supervisor_->state(), LinkState::kReconnecting);
  dialer_.fail_with.reset();
  for (int i = 0; i < 400 && !supervisor_->up(); ++i) Step();
  EXPECT_TRUE(supervisor_->up());
}

// A login asked while a reconnect is in flight waits for it; a second one is refused
// while the first runs; one asked while the link is up ends at once, never inside the call.
TEST_F(LinkSupervisorTest, ALoginWaitsForTheAttemptInFlightAndIsOneAtATime) {
  Start();
  dialer_.fail_with = ErrorCode::kConnect;
  supervisor_->Lost("eof");
  for (int i = 0; i < 100 && !dialer_.dialing(); ++i) {
    clock_.Advance(kTick);
    supervisor_->Tick();
  }
  ASSERT_TRUE(dialer_.dialing());
  ssh::NoPrompter person;
  std::vector<Status> first, second;
  supervisor_->Login(person, [&](Status s) { first.push_back(std::move(s)); });
  supervisor_->Login(person, [&](Status s) { second.push_back(std::move(s)); });
  EXPECT_TRUE(first.empty());
  EXPECT_TRUE(second.empty()) << "never inside the call";
  const size_t dials = dialer_.dials.size();
  Step();  // the reconnect fails; the login dials at once
  EXPECT_EQ(dialer_.dials.size(), dials + 1);
  EXPECT_EQ(dialer_.prompters.back(), &person);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_FALSE(second[0].ok());
  EXPECT_NE(second[0].error().message.find("another login"), std::string::npos);
  EXPECT_TRUE(first.empty());
  dialer_.fail_with.reset();
  Step();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].ok());
  std::vector<Status> third;
  supervisor_->Login(person, [&](Status s) { third.push_back(std::move(s)); });
  EXPECT_TRUE(third.empty());
  Step();
  ASSERT_EQ(third.size(), 1u);
  EXPECT_TRUE(third[0].ok());
  EXPECT_EQ(dialer_.dials.size(), dials + 1) << "up: nothing dialled";
}

}  // namespace
}  // namespace tether::daemon
