#include "daemon/lane.h"

#include "common/log.h"
#include "net/event_loop.h"
#include "ssh/link.h"
#include "ssh/prompter.h"

namespace tether::daemon {
Lane::Lane(int number, config::HostConfig host, ssh::ConnectOptions options,
           std::chrono::milliseconds dead_after, forward::WindowBudget& budget)
    : number_(number),
      host_(std::move(host)),
      options_(options),
      dead_after_(dead_after),
      budget_(budget) {
  if (!wake_.valid()) {
    Fail(ErrorCode::kOther, "cannot make a wake-up pipe");
    state_ = State::kEnded;
    finished_ = true;
    return;
  }
  thread_ = std::thread([this] { Main(); });
}

Lane::~Lane() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

void Lane::RequestStop() {
  stop_ = true;
  if (wake_.valid()) wake_.Wake();
}

bool Lane::Offer(forward::NewStream& stream) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_.load() != State::kUp || stop_.load()) return false;
    inbox_.push_back(std::move(stream));
    ++queued_;
  }
  wake_.Wake();
  return true;
}

std::string Lane::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

ErrorCode Lane::error_code() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_code_;
}

void Lane::Fail(ErrorCode code, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  error_code_ = code;
  error_ = why;
}

const char* ToString(Lane::State state) {
  switch (state) {
    case Lane::State::kConnecting:
      return "connecting";
    case Lane::State::kUp:
      return "up";
    case Lane::State::kEnded:
      return "ended";
  }
  return "";
}

void Lane::Main() {
  ssh::NoPrompter nobody;
  auto session = ssh::Session::Connect(host_, nobody, options_);
  if (!session.ok()) {
    Fail(session.error().code, session.error().ToString());
    spdlog::warn("[{} lane {}] could not connect: {}", host_.alias, number_,
                 session.error().ToString());
  } else if (!stop_.load()) {
    spdlog::info("[{} lane {}] up: cipher {}", host_.alias, number_, (*session)->cipher());
    Serve(std::move(*session));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kEnded;
    queued_ -= inbox_.size();
    inbox_.clear();  // their sockets close: the clients see the connection end
  }
  if (session.ok()) session->reset();  // disconnects before finished() says so
  finished_ = true;
}

void Lane::Serve(std::unique_ptr<ssh::Session> session) {
  net::EventLoop loop;
  // Untouched pages of the scratch buffer cost no memory: it grows resident only as far
  // as the largest read.
  std::unique_ptr<char[]> scratch(new char[forward::kMaxWindow]);
  forward::PumpContext context{&loop, scratch.get(), forward::kMaxWindow, &budget_};
  std::unique_ptr<ssh::Link> link;  // outlives the pumps, whose channels are on it
  forward::PumpSet pumps(context);
  auto opened = ssh::Link::Open(
      loop, std::move(session), {.read_ahead = true, .dead_after = dead_after_}, [&] {
        if (link->connected()) return;
        Fail(ErrorCode::kOther, link->EndReason());
        spdlog::warn("[{} lane {}] connection lost: {}", host_.alias, number_, error());
        loop.Stop();
      });
  if (!opened.ok()) {
    Fail(ErrorCode::kOther, opened.error().message);
    return;
  }
  link = std::move(*opened);
  loop.Watch(wake_.read_fd(), net::kReadable, [&](unsigned) {
    wake_.Drain();
    if (stop_.load()) {
      loop.Stop();
      return;
    }
    std::deque<forward::NewStream> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(inbox_);
      queued_ -= batch.size();
      running_ += batch.size();  // counted before they start, so live() never dips
    }
    streams_ += batch.size();
    for (auto& stream : batch) pumps.Start(link->raw(), std::move(stream));
  });
  loop.AddIterationHook([&] {
    pumps.ServiceDirty();
    running_ = pumps.size();
    link->UpdateWriteInterest();
  });
  state_ = State::kUp;
  if (stop_.load()) wake_.Wake();  // a stop asked during the connect ends the loop at once
  Status run = loop.Run();
  if (!run.ok()) Fail(ErrorCode::kOther, run.error().ToString());
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kEnded;  // no more offers from here on
  }
  pumps.Clear();
  running_ = 0;
  loop.Unwatch(wake_.read_fd());
}  // the link goes here, and its session disconnects, before finished() says so

}  // namespace tether::daemon
