#include "forward/owner_check.h"

#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "common/log.h"
#include "common/text.h"
#include "forward/socket_table.h"

namespace tether::forward {

// The greeting is "uid N", or "none WHY" where the table cannot be read; then for each
// port (4 hex digits) on stdin the lines of both tables that name it, and "end"; for
// "uN" the passwd line of uid N, and "end". Only a well-formed port reaches grep and only
// digits reach getent (and we send nothing else). `exec` spares a shell; the
// single quotes keep the loop whole under any login shell (sh, bash, zsh, fish, tcsh).
const char* const OwnerCheck::kCommand =
    "exec sh -c 'if [ ! -r /proc/net/tcp ]; then echo \"none /proc/net/tcp cannot be read\"; "
    "exit 0; fi; echo \"uid $(id -u)\"; while read -r p; do case $p in "
    "[0-9A-F][0-9A-F][0-9A-F][0-9A-F]) grep -h \":$p \" /proc/net/tcp /proc/net/tcp6 "
    "2>/dev/null;; u[0-9]*) case ${p#u} in *[!0-9]*) ;; *) getent passwd ${p#u} 2>/dev/null;; "
    "esac;; esac; echo end; done'";

OwnerCheck::OwnerCheck(net::EventLoop& loop, Runner run, std::string log_prefix)
    : loop_(loop), run_(std::move(run)), log_prefix_(std::move(log_prefix)) {}

OwnerCheck::~OwnerCheck() {
  for (auto id : {restart_timer_, timeout_timer_, delivery_timer_}) {
    if (id != 0) loop_.CancelTimer(id);
  }
  if (io_) loop_.Unwatch(io_.get());
  if (err_) loop_.Unwatch(err_.get());
}

void OwnerCheck::Warm() {
  if (!running_ && mode_ != Mode::kUnavailable && restart_timer_ == 0) Start();
}

OwnerCheck::Ticket OwnerCheck::Check(const std::string& origin_ip, uint16_t origin_port,
                                     uint16_t listen_port, Done done) {
  return Ask(origin_ip, origin_port, listen_port, std::move(done));
}

OwnerCheck::Ticket OwnerCheck::WhoListens(uint16_t port, Done done) {
  return Ask("", 0, port, std::move(done));
}

OwnerCheck::Ticket OwnerCheck::AccountOf(uint32_t uid, Done done) {
  return Ask("", 0, 0, std::move(done), uid);
}

OwnerCheck::Ticket OwnerCheck::Ask(std::string origin_ip, uint16_t origin_port,
                                   uint16_t listen_port, Done done,
                                   std::optional<uint32_t> account_of) {
  Ticket ticket = next_ticket_++;
  if (mode_ == Mode::kUnavailable) {
    Deliver(std::move(done), {Verdict::kUnavailable, 0, unavailable_why_, ""});
    return ticket;
  }
  if (questions_.size() >= kOwnerCheckMaxPending) {
    Deliver(std::move(done),
            {Verdict::kUnknown, 0, "too many connections waiting for the owner check", ""});
    return ticket;
  }
  questions_.push_back({ticket, std::move(origin_ip), origin_port, listen_port, account_of,
                        std::move(done), false, std::chrono::steady_clock::now()});
  if (running_) {
    SendQuestions();
  } else if (restart_timer_ == 0) {
    Start();
  }
  ArmTimer();
  return ticket;
}

void OwnerCheck::Cancel(Ticket ticket) {
  for (auto& q : questions_) {
    if (q.ticket == ticket) q.done = nullptr;
  }
}

void OwnerCheck::Start() {
  auto now = std::chrono::steady_clock::now();
  if (last_start_ != std::chrono::steady_clock::time_point{} &&
      now - last_start_ < kOwnerCheckRestart) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kOwnerCheckRestart -
                                                                      (now - last_start_));
    restart_timer_ = loop_.AddTimer(wait, [this] {
      restart_timer_ = 0;
      if (!running_ && !questions_.empty()) Start();
    });
    return;
  }
  last_start_ = now;
  int io[2], err[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, io) != 0) {
    return Stopped(std::string("socketpair: ") + std::strerror(errno));
  }
  UniqueFd mine(io[0]), theirs(io[1]);
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, err) != 0) {
    return Stopped(std::string("socketpair: ") + std::strerror(errno));
  }
  UniqueFd err_mine(err[0]), err_theirs(err[1]);
  UniqueFd theirs_in(::fcntl(theirs.get(), F_DUPFD_CLOEXEC, 0));
  if (!theirs_in) return Stopped(std::string("dup: ") + std::strerror(errno));

  io_ = std::move(mine);
  err_ = std::move(err_mine);
  running_ = true;
  greeted_ = false;
  in_.clear();
  answer_.clear();
  for (auto& q : questions_) q.sent = false;
  uint64_t generation = ++generation_;
  loop_.Watch(io_.get(), net::kReadable, [this](unsigned) { OnReadable(); });
  loop_.Watch(err_.get(), net::kReadable, [this](unsigned) {
    char buf[512];
    ssize_t n = ::read(err_.get(), buf, sizeof(buf));
    if (n > 0) {
      spdlog::debug("[{}] owner check: {}", log_prefix_,
                    std::string_view(buf, static_cast<size_t>(n)));
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      loop_.Unwatch(err_.get());
      err_.Reset();
    }
  });
  spdlog::debug("[{}] owner check: starting its shell loop on the server", log_prefix_);
  run_(kCommand, std::move(theirs_in), std::move(theirs), std::move(err_theirs),
       [this, generation](const std::string& why) {
         if (generation != generation_ || !running_) return;
         // Its last output was written before it ended and may not have been read yet
         // (the "none" greeting of a server without the table, a last answer).
         OnReadable();
         if (generation == generation_ && running_) Stopped(why);
       });
}

void OwnerCheck::SendQuestions() {
  if (!running_ || !greeted_) return;
  std::string out;
  for (auto& q : questions_) {
    if (q.sent) continue;
    q.sent = true;
    out += (q.account_of ? "u" + std::to_string(*q.account_of) : PortHex(q.asked_port())) + "\n";
  }
  if (out.empty()) return;
  // A few bytes a question and at most kOwnerCheckMaxPending of them: they fit the
  // socket's buffer, so a short write means the session is gone.
  ssize_t n = ::send(io_.get(), out.data(), out.size(), MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(out.size())) {
    Stopped(n < 0 ? std::string("write: ") + std::strerror(errno) : "the server's side is full");
  }
}

void OwnerCheck::OnReadable() {
  char buf[16 << 10];
  for (int round = 0; round < 16 && io_; ++round) {
    ssize_t n = ::read(io_.get(), buf, sizeof(buf));
    if (n == 0) return Stopped("the check's session ended");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      return Stopped(std::string("read: ") + std::strerror(errno));
    }
    in_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; running_ && (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1) {
      OnLine(std::string_view(in_).substr(start, nl - start));
    }
    if (!running_) return;
    in_.erase(0, start);
    if (in_.size() > kOwnerCheckMaxAnswer) return Stopped("the server's answer is too long");
  }
}

void OwnerCheck::OnLine(std::string_view line) {
  if (!greeted_) {
    if (line.rfind("uid ", 0) == 0) {
      auto uid = ParseUint(line.substr(4));
      if (!uid || *uid > UINT32_MAX) return Stopped("the server's greeting is garbled");
      greeted_ = true;
      owner_uid_ = static_cast<uint32_t>(*uid);
      if (mode_ != Mode::kByUid) {
        spdlog::info("[{}] owner check: connections are served to uid {} alone", log_prefix_,
                     owner_uid_);
      }
      mode_ = Mode::kByUid;
      return SendQuestions();
    }
    if (line.rfind("none", 0) == 0) {
      mode_ = Mode::kUnavailable;
      unavailable_why_ = "the server cannot say who connected (" +
                         std::string(line.size() > 5 ? line.substr(5) : "no /proc/net/tcp") + ")";
      spdlog::warn("[{}] owner check: {}", log_prefix_, unavailable_why_);
      AnswerAll({Verdict::kUnavailable, 0, unavailable_why_, ""});
      Close();  // the script on the server has exited
      return;
    }
    // The user's shell may print before exec (a banner from their rc): skipped.
    return;
  }
  if (line != "end") {
    if (answer_.size() + line.size() + 1 > kOwnerCheckMaxAnswer) {
      return Stopped("the server's answer is too long");
    }
    answer_.append(line);
    answer_ += '\n';
    return;
  }
  if (questions_.empty() || !questions_.front().sent) {
    return Stopped("the server answered a question not asked");
  }
  Question q = std::move(questions_.front());
  questions_.pop_front();
  if (q.account_of) {
    std::string name = AccountName(answer_, *q.account_of);
    answer_.clear();
    if (q.done) {
      Deliver(std::move(q.done), {*q.account_of == owner_uid_ ? Verdict::kOwner : Verdict::kOther,
                                  *q.account_of, "", std::move(name)});
    }
    ArmTimer();
    return;
  }
  auto table = ParseSocketTable(answer_);
  answer_.clear();
  auto uid = q.origin_ip.empty()
                 ? ListenerPreferringOthers(table, q.listen_port, owner_uid_)
                 : OwnerOfConnection(table, q.origin_ip, q.origin_port, q.listen_port);
  if (!q.done) return;
  if (!uid) {
    Deliver(std::move(q.done),
            {Verdict::kUnknown, 0,
             q.origin_ip.empty() ? "nothing listens on port " + std::to_string(q.listen_port)
                                 : "no live socket on the server connects from " + q.origin_ip +
                                       ":" + std::to_string(q.origin_port),
             ""});
  } else {
    Deliver(std::move(q.done),
            {*uid == owner_uid_ ? Verdict::kOwner : Verdict::kOther, *uid, "", ""});
  }
  ArmTimer();
}

void OwnerCheck::Close() {
  running_ = false;
  greeted_ = false;
  ++generation_;  // a late `ended` of this run is not the next run's
  if (io_) {
    loop_.Unwatch(io_.get());
    io_.Reset();  // the shell reads EOF and exits
  }
  if (err_) {
    loop_.Unwatch(err_.get());
    err_.Reset();
  }
}

void OwnerCheck::Stopped(const std::string& why) {
  bool was_running = running_;
  Close();
  if (was_running || !questions_.empty()) {
    spdlog::warn("[{}] owner check: {}", log_prefix_, why);
  }
  AnswerAll({Verdict::kUnknown, 0, "the owner check failed: " + why, ""});
}

void OwnerCheck::AnswerAll(const Answer& answer) {
  while (!questions_.empty()) {
    Question q = std::move(questions_.front());
    questions_.pop_front();
    if (q.done) Deliver(std::move(q.done), answer);
  }
}

void OwnerCheck::Deliver(Done done, Answer answer) {
  deliveries_.emplace_back(std::move(done), std::move(answer));
  if (delivery_timer_ != 0) return;
  delivery_timer_ = loop_.AddTimer(std::chrono::milliseconds(0), [this] {
    delivery_timer_ = 0;
    auto batch = std::move(deliveries_);
    deliveries_.clear();
    for (auto& [done, answer] : batch) done(answer);
  });
}

void OwnerCheck::ArmTimer() {
  if (timeout_timer_ != 0 || questions_.empty()) return;
  auto deadline = questions_.front().asked + kOwnerCheckTimeout;
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  timeout_timer_ = loop_.AddTimer(
      std::max(wait, std::chrono::milliseconds(0)) + std::chrono::milliseconds(1), [this] {
        timeout_timer_ = 0;
        if (questions_.empty()) return;
        if (std::chrono::steady_clock::now() - questions_.front().asked >= kOwnerCheckTimeout) {
          Stopped("the server did not answer within " + std::to_string(kOwnerCheckTimeout.count()) +
                  " s");
          return;
        }
        ArmTimer();
      });
}

}  // namespace tether::forward
