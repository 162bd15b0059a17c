#include "forward/owner_check.h"

#include <cstdint>

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
    : loop_(loop),
      log_prefix_(log_prefix),
      server_(
          loop, std::move(run),
          {kCommand, "owner check", kOwnerCheckMaxAnswer, kOwnerCheckTimeout, kOwnerCheckRestart},
          {[this](uint32_t uid) { OnGreeted(uid); },
           [this](const std::string& why) { OnUnavailable(why); },
           [this](const std::string& answer) { OnAnswer(answer); },
           [this](const std::string& why, bool) { Stopped(why); }},
          log_prefix) {}

OwnerCheck::~OwnerCheck() {
  if (delivery_timer_ != 0) loop_.CancelTimer(delivery_timer_);
}

void OwnerCheck::Warm() {
  if (mode_ != Mode::kUnavailable) server_.Run();
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
  questions_.push_back(
      {ticket, std::move(origin_ip), origin_port, listen_port, account_of, std::move(done)});
  if (server_.greeted()) {
    SendQuestions();
  } else {
    server_.Run();
  }
  return ticket;
}

void OwnerCheck::Cancel(Ticket ticket) {
  for (auto& q : questions_) {
    if (q.ticket == ticket) q.done = nullptr;
  }
}

void OwnerCheck::SendQuestions() {
  if (!server_.greeted()) return;
  std::string out;
  for (auto& q : questions_) {
    if (q.sent) continue;
    q.sent = true;
    out += (q.account_of ? "u" + std::to_string(*q.account_of) : PortHex(q.asked_port())) + "\n";
  }
  // At most kOwnerCheckMaxPending questions of a few bytes: a failed write ends the run,
  // and every question waiting is answered.
  if (!out.empty()) server_.Ask(out);
}

void OwnerCheck::OnGreeted(uint32_t uid) {
  owner_uid_ = uid;
  if (mode_ != Mode::kByUid) {
    spdlog::info("[{}] owner check: connections are served to uid {} alone", log_prefix_,
                 owner_uid_);
  }
  mode_ = Mode::kByUid;
  SendQuestions();
}

void OwnerCheck::OnUnavailable(const std::string& why) {
  mode_ = Mode::kUnavailable;
  unavailable_why_ =
      "the server cannot say who connected (" + (why.empty() ? "no /proc/net/tcp" : why) + ")";
  spdlog::warn("[{}] owner check: {}", log_prefix_, unavailable_why_);
  AnswerAll({Verdict::kUnavailable, 0, unavailable_why_, ""});
}

void OwnerCheck::OnAnswer(const std::string& answer) {
  if (questions_.empty() || !questions_.front().sent) {
    server_.Close();
    return Stopped("the server answered a question not asked");
  }
  Question q = std::move(questions_.front());
  questions_.pop_front();
  if (q.account_of) {
    auto entry = FindPasswdEntry(answer, *q.account_of);
    std::string name = entry ? std::move(entry->name) : std::string();
    if (q.done) {
      Deliver(std::move(q.done), {*q.account_of == owner_uid_ ? Verdict::kOwner : Verdict::kOther,
                                  *q.account_of, "", std::move(name)});
    }
    return;
  }
  auto table = ParseSocketTable(answer);
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
}

void OwnerCheck::Stopped(const std::string& why) {
  spdlog::warn("[{}] owner check: {}", log_prefix_, why);
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

}  // namespace tether::forward
