#include "forward/server_loop.h"

#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/text.h"

namespace tether::forward {

ServerLoop::ServerLoop(net::EventLoop& loop, Runner run, Settings settings, Events events,
                       std::string log_prefix)
    : loop_(loop),
      run_(std::move(run)),
      settings_(std::move(settings)),
      events_(std::move(events)),
      log_prefix_(std::move(log_prefix)) {}

ServerLoop::~ServerLoop() {
  for (auto id : {start_timer_, stall_timer_}) {
    if (id != 0) loop_.CancelTimer(id);
  }
  if (io_) loop_.Unwatch(io_.get());
  if (err_) loop_.Unwatch(err_.get());
}

void ServerLoop::Run() {
  if (running_ || start_timer_ != 0 || unavailable_) return;
  auto since = Clock::now() - last_start_;
  if (last_start_ != Clock::time_point{} && since < settings_.restart) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(settings_.restart - since);
    start_timer_ = loop_.AddTimer(wait + std::chrono::milliseconds(1), [this] {
      start_timer_ = 0;
      if (!running_ && !unavailable_) StartNow();
    });
    return;
  }
  StartNow();
}

void ServerLoop::StartNow() {
  last_start_ = Clock::now();
  int io[2], err[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, io) != 0) {
    return Stop(std::string("socketpair: ") + std::strerror(errno), false);
  }
  UniqueFd mine(io[0]), theirs(io[1]);
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, err) != 0) {
    return Stop(std::string("socketpair: ") + std::strerror(errno), false);
  }
  UniqueFd err_mine(err[0]), err_theirs(err[1]);
  UniqueFd theirs_in(::fcntl(theirs.get(), F_DUPFD_CLOEXEC, 0));
  if (!theirs_in) return Stop(std::string("dup: ") + std::strerror(errno), false);

  io_ = std::move(mine);
  err_ = std::move(err_mine);
  running_ = true;
  greeted_ = false;
  in_.clear();
  answer_.clear();
  sent_.clear();
  uint64_t generation = ++generation_;
  loop_.Watch(io_.get(), net::kReadable, [this](unsigned) { OnReadable(); });
  loop_.Watch(err_.get(), net::kReadable, [this](unsigned) {
    char buf[512];
    ssize_t n = ::read(err_.get(), buf, sizeof(buf));
    if (n > 0) {
      spdlog::debug("[{}] {}: {}", log_prefix_, settings_.what,
                    SanitizeUtf8(std::string_view(buf, static_cast<size_t>(n))));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      loop_.Unwatch(err_.get());
      err_.Reset();
    }
  });
  ArmStallTimer();
  spdlog::debug("[{}] {}: starting its shell loop on the server", log_prefix_, settings_.what);
  run_(settings_.command, std::move(theirs_in), std::move(theirs), std::move(err_theirs),
       [this, generation](const std::string& why) {
         if (generation != generation_ || !running_) return;
         // Its last output was written before it ended and may not have been read yet
         // (the "none" greeting of a server that cannot run it, a last answer).
         OnReadable();
         if (generation == generation_ && running_) Stop(why, false);
       });
}

bool ServerLoop::Ask(std::string_view questions) {
  if (!running_ || !greeted_) return false;
  // A few bytes a question, and the owners bound how many wait: they fit the socket's
  // buffer, so a short write means the session is gone.
  ssize_t n = ::send(io_.get(), questions.data(), questions.size(), MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(questions.size())) {
    Stop(n < 0 ? std::string("write: ") + std::strerror(errno) : "the server's side is full",
         false);
    return false;
  }
  auto now = Clock::now();
  for (char c : questions) {
    if (c == '\n') sent_.push_back(now);
  }
  ArmStallTimer();
  return true;
}

void ServerLoop::OnReadable() {
  char buf[16 << 10];
  const uint64_t generation = generation_;
  for (int round = 0; round < 64 && io_ && generation == generation_; ++round) {
    ssize_t n = ::read(io_.get(), buf, sizeof(buf));
    if (n == 0) return Stop("its session on the server ended", false);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      return Stop(std::string("read: ") + std::strerror(errno), false);
    }
    in_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; generation == generation_ && (nl = in_.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      OnLine(std::string_view(in_).substr(start, nl - start));
    }
    // An owner's callback may have ended this run, or started the next (in_ is its own).
    if (generation != generation_) return;
    in_.erase(0, start);
    if (in_.size() > settings_.max_answer) return Stop("the server's answer is too long", false);
  }
}

void ServerLoop::OnLine(std::string_view line) {
  if (!greeted_) {
    if (line.rfind("uid ", 0) == 0) {
      auto uid = ParseUint(line.substr(4));
      if (!uid || *uid > UINT32_MAX) return Stop("the server's greeting is garbled", false);
      greeted_ = true;
      uid_ = static_cast<uint32_t>(*uid);
      spdlog::debug(
          "[{}] {}: its shell loop greeted after {} ms", log_prefix_, settings_.what,
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_start_)
              .count());
      if (events_.greeted) events_.greeted(uid_);
    } else if (line.rfind("none", 0) == 0) {
      unavailable_ = true;
      Close();  // the script on the server has exited
      if (events_.unavailable) {
        events_.unavailable(std::string(line.size() > 5 ? line.substr(5) : ""));
      }
    }
    return;  // a banner of the user's shell before exec: skipped
  }
  if (line != "end") {
    if (answer_.size() + line.size() + 1 > settings_.max_answer) {
      return Stop("the server's answer is too long", false);
    }
    answer_.append(line);
    answer_ += '\n';
    return;
  }
  if (sent_.empty()) return Stop("the server answered a question not asked", false);
  sent_.pop_front();
  std::string answer = std::move(answer_);
  answer_.clear();
  if (events_.answered) events_.answered(std::move(answer));
}

void ServerLoop::Close() {
  running_ = false;
  greeted_ = false;
  ++generation_;  // a late `ended` of this run is not the next run's
  sent_.clear();
  answer_.clear();
  if (stall_timer_ != 0) {
    loop_.CancelTimer(stall_timer_);
    stall_timer_ = 0;
  }
  if (io_) {
    loop_.Unwatch(io_.get());
    io_.Reset();  // the shell reads EOF and exits
  }
  if (err_) {
    loop_.Unwatch(err_.get());
    err_.Reset();
  }
}

void ServerLoop::Stop(const std::string& why, bool silent) {
  Close();
  if (events_.stopped) events_.stopped(why, silent);
}

ServerLoop::Clock::time_point ServerLoop::Deadline() const {
  if (!running_) return {};
  if (!greeted_) return last_start_ + settings_.stall;
  if (!sent_.empty()) return sent_.front() + settings_.stall;
  return {};
}

void ServerLoop::ArmStallTimer() {
  if (stall_timer_ != 0) return;
  auto deadline = Deadline();
  if (deadline == Clock::time_point{}) return;
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  // The deadline only moves later while a run lasts (answers come in order), so one timer
  // that looks again when it fires is enough.
  stall_timer_ = loop_.AddTimer(
      std::max(wait, std::chrono::milliseconds(0)) + std::chrono::milliseconds(1), [this] {
        stall_timer_ = 0;
        auto deadline = Deadline();
        if (deadline == Clock::time_point{}) return;
        if (Clock::now() < deadline) return ArmStallTimer();
        Stop(fmt::format("the server did not answer within {:g} s",
                         static_cast<double>(settings_.stall.count()) / 1000.0),
             true);
      });
}

}  // namespace tether::forward
