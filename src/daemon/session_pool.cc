#include "daemon/session_pool.h"

#include <algorithm>

#include "common/log.h"

namespace tether::daemon {

std::optional<size_t> FirstWithRoom(const std::vector<SessionRoom>& connections,
                                    std::optional<size_t> avoid) {
  for (size_t i = 0; i < connections.size(); ++i) {
    if (avoid && *avoid == i) continue;
    const SessionRoom& c = connections[i];
    if (!c.limit || c.open < *c.limit) return i;
  }
  return std::nullopt;
}

std::optional<size_t> LimitAfterRefusal(size_t confirmed, size_t asked,
                                        std::optional<size_t> known) {
  // Refused with nothing else open or opening: not MaxSessions, a policy.
  if (asked == 0 && !known) return std::nullopt;
  return std::max({known.value_or(0), confirmed, size_t{1}});
}

SessionPool::SessionPool(net::EventLoop& loop, config::HostConfig host,
                         forward::WindowBudget& budget)
    : loop_(loop), host_(std::move(host)), budget_(budget) {
  extra_connector_ = std::make_unique<Connector>(
      loop_, [this](Result<std::unique_ptr<ssh::Session>> r) { OnExtraLink(std::move(r)); });
}

SessionPool::~SessionPool() {
  extra_connector_.reset();  // joins an attempt in flight, bounded by its timeouts
  sessions_.clear();
  extra_links_.clear();
}

void SessionPool::Attach(ssh_session main, std::chrono::milliseconds dead_after) {
  main_ = main;
  dead_after_ = dead_after;
  session_limit_.erase(main);  // a new session may reuse an old one's address
}

void SessionPool::Detach(const std::string& why) {
  for (auto& [id, session] : sessions_) {
    session->Abort("the connection to " + host_.alias + " was lost (" + why + ")");
  }
  sessions_.clear();
  DropExtraLinks("the main connection was lost");
  main_ = nullptr;
  down_reason_ = "tether is reconnecting";
}

void SessionPool::WindowChanged() {
  for (auto& [id, session] : sessions_) session->WindowChanged();
}

void SessionPool::AbortAll(const std::string& why) {
  for (auto& [id, session] : sessions_) session->Abort(why);
  sessions_.clear();
}

size_t SessionPool::waiting() const {
  size_t parked = 0;
  for (const auto& [id, s] : sessions_) parked += s->parked() ? 1 : 0;
  return parked;
}

void SessionPool::UpdateWriteInterest() {
  for (auto& extra : extra_links_) extra.link->UpdateWriteInterest();
}

void SessionPool::OnExtraLinkInput() {
  for (size_t i = 0; i < extra_links_.size();) {
    if (extra_links_[i].link->connected()) {
      ++i;
      continue;
    }
    ssh_session dead = extra_links_[i].link->raw();
    for (auto& [id, s] : sessions_) {
      if (s->session() == dead) s->Abort("an extra connection to " + host_.alias + " was lost");
    }
    std::erase_if(sessions_, [](const auto& kv) { return kv.second->done(); });
    session_limit_.erase(dead);
    extra_links_.erase(extra_links_.begin() + static_cast<long>(i));
  }
}

void SessionPool::Service() {
  // A session's callbacks may end others (End): iterate over ids.
  std::vector<uint32_t> ids;
  for (const auto& [id, session] : sessions_) ids.push_back(id);
  bool parked = false;
  bool ended = false;
  for (uint32_t id : ids) {
    auto it = sessions_.find(id);
    if (it == sessions_.end()) continue;
    ExecSession& s = *it->second;
    ssh_session link = s.session();
    s.Service();
    for (auto& [name, taken] : s.TakeEnvAnswers()) accepted_env_[name] = taken;
    if (s.TakeRunnerStart()) ++by_runner_;
    if (std::string trouble = s.TakeRunnerTrouble(); !trouble.empty()) {
      if (!s.via_runner()) ++runner_fallbacks_;
      if (runner_trouble_) runner_trouble_(trouble);
    }
    if (s.parked() && s.refused_for_max_sessions()) {
      // sshd's MaxSessions: this connection holds at least as many sessions as sshd has
      // confirmed on it. Only those count: sessions parked here earlier hold nothing, and
      // opens still in flight may be refused too. sshd may also still hold sessions that
      // ended here (their close crosses the refusal), so what is seen can be below the
      // limit but never above it: the limit is the largest count seen.
      size_t confirmed = 0;
      size_t asked = 0;
      for (const auto& [other_id, other] : sessions_) {
        if (other_id == id || other->session() != link) continue;
        confirmed += other->holds_session() ? 1 : 0;
        asked += other->holds_or_opens_session() ? 1 : 0;
      }
      auto known = session_limit_.find(link);
      std::optional<size_t> limit = LimitAfterRefusal(
          confirmed, asked,
          known == session_limit_.end() ? std::nullopt : std::optional<size_t>(known->second));
      if (!limit) {
        s.Abort("the server refused a session: " + s.refusal());
      } else {
        if (known == session_limit_.end() || known->second < *limit) {
          session_limit_[link] = *limit;
          spdlog::info("[{}] the server allows {} sessions per connection; using another",
                       host_.alias, *limit);
        }
        // Not on this connection again until one of its sessions ends (or, if it was
        // sshd's backlog of closes, a moment later): see PlaceParked.
        refused_on_[id] = link;
      }
    }
    parked |= s.parked();
    if (s.done()) {
      sessions_.erase(id);
      ended = true;
    }
  }
  std::erase_if(refused_on_, [this](const auto& kv) { return sessions_.count(kv.first) == 0; });
  if (parked || ended) PlaceParked();
}

ssh_session SessionPool::PickLink(ssh_session avoid) {
  std::vector<ssh_session> links;
  if (main_ != nullptr) links.push_back(main_);
  for (const auto& l : extra_links_) links.push_back(l.link->raw());
  std::vector<SessionRoom> rooms(links.size());
  std::optional<size_t> skip;
  for (size_t i = 0; i < links.size(); ++i) {
    if (links[i] == avoid) skip = i;
    auto limit = session_limit_.find(links[i]);
    if (limit != session_limit_.end()) rooms[i].limit = limit->second;
    for (const auto& [id, s] : sessions_) {
      if (s->session() == links[i] && s->holds_or_opens_session()) ++rooms[i].open;
    }
  }
  std::optional<size_t> pick = FirstWithRoom(rooms, skip);
  return pick ? links[*pick] : nullptr;
}

void SessionPool::PlaceParked() {
  // Over a snapshot of ids: a session's callbacks may end sessions (End).
  std::vector<uint32_t> parked;
  for (const auto& [id, s] : sessions_) {
    if (s->parked()) parked.push_back(id);
  }
  bool waiting = false;
  for (uint32_t id : parked) {
    auto it = sessions_.find(id);
    if (it == sessions_.end() || !it->second->parked()) continue;
    auto refused = refused_on_.find(id);
    ssh_session link = it->second->via_runner()
                           ? main_
                           : PickLink(refused == refused_on_.end() ? nullptr : refused->second);
    if (link == nullptr) {
      waiting = true;
      continue;  // another one may still fit where this one was refused
    }
    refused_on_.erase(id);
    ExecSession& s = *it->second;
    // By the runner: on the main connection, where it listens; no session is taken.
    if (s.via_runner()) link = main_;
    s.Rebind(link);
    s.Service();
  }
  if (!waiting || main_ == nullptr) return;
  // Parked sessions are placed again when a session ends or a connection comes. A refusal
  // can also come from sshd's backlog of closes (sessions that ended here but whose close
  // sshd had not yet read), which neither event marks: forget the refusals and try again
  // shortly, bounded to one retry in flight.
  if (!place_retry_armed_) {
    place_retry_armed_ = true;
    loop_.AddTimer(kParkedRetry, [this] {
      place_retry_armed_ = false;
      refused_on_.clear();
      PlaceParked();
    });
  }
  if (extra_links_.size() >= kMaxExtraLinks) return;  // they wait for a session to end
  if (extra_connector_->running()) return;
  spdlog::info("[{}] opening another connection for sessions ({} so far)", host_.alias,
               extra_links_.size() + 1);
  ssh::ConnectOptions options;
  options.probe = false;
  extra_connector_->Start(RedialHost(host_), options);
}

void SessionPool::OnExtraLink(Result<std::unique_ptr<ssh::Session>> result) {
  Result<std::unique_ptr<ssh::Link>> link = MakeError("link", "the main connection is down");
  if (result.ok() && main_ != nullptr) {
    link = ssh::Link::Open(loop_, std::move(*result), {.dead_after = dead_after_},
                           [this] { OnExtraLinkInput(); });
  } else if (!result.ok()) {
    link = result.take_error();
  }
  if (!link.ok()) {
    std::string why = link.error().ToString();
    spdlog::warn("[{}] another connection for sessions failed: {}", host_.alias, why);
    // Sessions that cannot get a connection fail (unless one ends and frees a slot).
    bool any_extra = !extra_links_.empty();
    for (auto& [id, s] : sessions_) {
      if (s->parked() && !any_extra) {
        s->Abort("sshd's MaxSessions is reached and another connection failed: " + why);
      }
    }
    std::erase_if(sessions_, [](const auto& kv) { return kv.second->done(); });
    return;
  }
  extra_links_.push_back(ExtraLink{std::move(*link), std::chrono::steady_clock::now()});
  PlaceParked();
}

void SessionPool::DropExtraLinks(const std::string& why) {
  for (auto& extra : extra_links_) {
    ssh_session raw = extra.link->raw();
    for (auto& [id, s] : sessions_) {
      if (s->session() == raw) s->Abort(why);
    }
    session_limit_.erase(raw);
  }
  std::erase_if(sessions_, [](const auto& kv) { return kv.second->done(); });
  extra_links_.clear();
}

void SessionPool::Check(std::chrono::steady_clock::time_point now) {
  for (size_t i = 0; i < extra_links_.size();) {
    ssh_session raw = extra_links_[i].link->raw();
    bool used = false;
    for (const auto& [id, s] : sessions_) used |= s->session() == raw;
    if (used) extra_links_[i].idle_since = now;
    if (!used && now - extra_links_[i].idle_since >= kExtraLinkIdle) {
      session_limit_.erase(raw);
      extra_links_.erase(extra_links_.begin() + static_cast<long>(i));
      continue;
    }
    ++i;
  }
}

uint32_t SessionPool::Start(ExecRequest request, UniqueFd in, UniqueFd out, UniqueFd err,
                            SessionEvents events, const std::string& what) {
  uint32_t id = next_session_++;
  std::string prefix = host_.alias + " session #" + std::to_string(id);
  if (main_ == nullptr) {
    // Answered on the next wake-up: the caller is still setting up.
    auto started = std::move(events.started);
    loop_.AddTimer(std::chrono::milliseconds(0),
                   [started, why = "the connection to " + host_.alias + " is down; " +
                                   down_reason_] { started(false, why, false); });
    return id;
  }
  if (ForRunner(request)) {
    request.runner_socket = runner_socket_;
    spdlog::info("[{}] {}, by the runner", prefix, what);
  } else {
    spdlog::info("[{}] {}", prefix, what);
  }
  auto s = std::make_unique<ExecSession>(loop_, std::move(in), std::move(out), std::move(err),
                                         std::move(request), std::move(events.started),
                                         std::move(events.finished), prefix, budget_);
  // Placed (or parked) on the next wake-up: the caller is still setting up.
  sessions_.emplace(id, std::move(s));
  loop_.AddTimer(std::chrono::milliseconds(0), [this] { PlaceParked(); });
  return id;
}

bool SessionPool::ForRunner(ExecRequest& request) const {
  if (runner_socket_.empty() || request.force_session || request.pty || request.subsystem ||
      request.stdio_forward || request.command.empty()) {
    return false;
  }
  for (const auto& var : request.env) {
    if (!accepted_env_.count(var.substr(0, var.find('=')))) return false;  // a session learns it
  }
  std::erase_if(request.env, [this](const std::string& var) {
    return !accepted_env_.at(var.substr(0, var.find('=')));
  });
  return true;
}

void SessionPool::End(uint32_t id) {
  // The mux client went away, often from inside the session's own callbacks (telling the
  // client its command started fails on a socket it shut down): erasing the session here
  // would free it under its own Service and change sessions_ under loops over it. It is
  // detached now and erased on the next round.
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  it->second->Detach();
  ReapSessionsSoon();
}

void SessionPool::ReapSessionsSoon() {
  if (reap_scheduled_) return;
  reap_scheduled_ = true;
  // Timers run from the top of the loop, never inside a session's call.
  loop_.AddTimer(std::chrono::milliseconds(0), [this] {
    reap_scheduled_ = false;
    std::erase_if(sessions_, [](const auto& kv) { return kv.second->done(); });
  });
}

}  // namespace tether::daemon
