#include "daemon/login_relay.h"

#include <algorithm>

#include "common/log.h"
#include "control/json_fields.h"

namespace tether::daemon {
namespace {

void Wipe(std::string& secret) { std::fill(secret.begin(), secret.end(), '\0'); }

}  // namespace

LoginRelay::LoginRelay(net::EventLoop& loop, LinkSupervisor& supervisor, std::string alias)
    : loop_(loop), supervisor_(supervisor), alias_(std::move(alias)) {
  if (wake_.valid()) {
    loop_.Watch(wake_.read_fd(), net::kReadable, [this](unsigned) {
      wake_.Drain();
      Flush();
    });
  }
}

LoginRelay::~LoginRelay() {
  Stop("the daemon is stopping");
  if (wake_.valid()) loop_.Unwatch(wake_.read_fd());
}

void LoginRelay::Stop(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (given_up_.empty()) given_up_ = why;
  answered_.notify_all();
}

void LoginRelay::Register(control::ControlServer& server) {
  server.RegisterLater("login", [this](const control::Json& request, control::LaterReply reply) {
    OnLogin(request, std::move(reply));
  });
  server.RegisterLater("login_answer",
                       [this](const control::Json& request, control::LaterReply reply) {
                         OnAnswer(request, std::move(reply));
                       });
  server.OnClientGone([this](uint64_t client) { OnClientGone(client); });
}

void LoginRelay::OnLogin(const control::Json&, control::LaterReply reply) {
  if (reply.client() == 0) {
    reply.Send(MakeError("login", "a login needs a control connection of its own"));
    return;
  }
  if (client_ != 0) {
    reply.Send(MakeError("login",
                         client_gone_ ? "the previous login to " + alias_ + " is still ending"
                                      : "another login to " + alias_ + " is running",
                         client_gone_ ? "try again in a few seconds"
                                      : "answer it where it asks, or end it (Ctrl-C) first"));
    return;
  }
  if (supervisor_.up()) {
    reply.Send(control::Json{{"event", "done"}, {"state", "up"}, {"already_up", true}});
    return;
  }
  Reset();
  client_ = reply.client();
  waiting_.emplace(std::move(reply));
  spdlog::info("[{}] login asked for on the control socket", alias_);
  supervisor_.Login(asker_, [this](Status result) { OnFinished(std::move(result)); });
}

void LoginRelay::OnAnswer(const control::Json& request, control::LaterReply reply) {
  if (client_ == 0 || reply.client() != client_) {
    reply.Send(MakeError("login", "no login of this connection is running",
                         "send {\"cmd\":\"login\"} first"));
    return;
  }
  if (waiting_) {
    reply.Send(MakeError("login", "the last request is still waiting for its reply"));
    return;
  }
  auto answer = control::StringField(request, "answer");
  if (!answer.ok()) {
    reply.Send(answer.take_error());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!asked_ || !sent_) {
      Wipe(*answer);
      reply.Send(MakeError("login", "no prompt is waiting for an answer"));
      return;
    }
    answer_ = std::move(*answer);
    asked_.reset();
    sent_ = false;
  }
  Wipe(*answer);
  answered_.notify_all();
  waiting_.emplace(std::move(reply));
}

void LoginRelay::OnClientGone(uint64_t client) {
  if (client == 0 || client != client_) return;
  spdlog::info("[{}] the login's client went away: giving the login up", alias_);
  client_gone_ = true;
  waiting_.reset();
  Stop("the `tether login` that was asked went away");
}

void LoginRelay::OnFinished(Status result) {
  finished_.emplace(std::move(result));
  if (client_gone_ || client_ == 0) {
    Reset();
    return;
  }
  Flush();
}

void LoginRelay::Flush() {
  if (!waiting_) return;
  control::Json event;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) {
      if (finished_->ok()) {
        event = {{"event", "done"}, {"state", "up"}};
      } else {
        event = {{"event", "failed"},
                 {"state", ToString(supervisor_.state())},
                 {"error", finished_->error().message}};
        if (!finished_->error().hint.empty()) event["hint"] = finished_->error().hint;
      }
    } else if (asked_ && !sent_) {
      event = {{"event", "prompt"}, {"prompt", *asked_}, {"echo", echo_}};
      sent_ = true;
    } else {
      return;  // nothing new yet
    }
    event["tell"] = told_;
    told_.clear();
  }
  control::LaterReply reply = std::move(*waiting_);
  waiting_.reset();
  const bool ended = finished_.has_value();
  reply.Send(std::move(event));
  if (ended) Reset();
}

void LoginRelay::Reset() {
  client_ = 0;
  client_gone_ = false;
  waiting_.reset();
  finished_.reset();
  std::lock_guard<std::mutex> lock(mu_);
  told_.clear();
  asked_.reset();
  sent_ = false;
  if (answer_) Wipe(*answer_);
  answer_.reset();
  given_up_.clear();
}

bool LoginRelay::Asker::CanPrompt() const {
  std::lock_guard<std::mutex> lock(relay_.mu_);
  return relay_.given_up_.empty();
}

std::optional<std::string> LoginRelay::Asker::Ask(const std::string& prompt, bool echo) {
  std::unique_lock<std::mutex> lock(relay_.mu_);
  if (!relay_.given_up_.empty()) return std::nullopt;
  relay_.asked_ = prompt;
  relay_.echo_ = echo;
  relay_.sent_ = false;
  relay_.answer_.reset();
  relay_.wake_.Wake();
  bool answered = relay_.answered_.wait_for(lock, kAnswerWait, [this] {
    return relay_.answer_.has_value() || !relay_.given_up_.empty();
  });
  if (!answered) {
    relay_.given_up_ = "no answer within " + std::to_string(kAnswerWait.count()) + " s";
  }
  if (!relay_.answer_) {
    relay_.asked_.reset();
    return std::nullopt;
  }
  std::optional<std::string> answer = std::move(relay_.answer_);
  relay_.answer_.reset();
  return answer;
}

void LoginRelay::Asker::Tell(const std::string& text) {
  std::lock_guard<std::mutex> lock(relay_.mu_);
  // Bounded: a server that sends instructions without end gets the first ones shown.
  if (relay_.told_.size() < 64) relay_.told_.push_back(text);
}

std::string LoginRelay::Asker::WhyNot() const {
  std::lock_guard<std::mutex> lock(relay_.mu_);
  return relay_.given_up_;
}

std::string LoginRelay::Asker::HowToBeAsked() const {
  return "run `tether login " + relay_.alias_ + "` again";
}

}  // namespace tether::daemon
