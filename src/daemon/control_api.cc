#include "daemon/control_api.h"

#include "common/log.h"
#include "control/json_fields.h"
#include "ssh/read_ahead.h"

namespace tether::daemon {
namespace {

Result<config::ForwardKind> KindNamed(const std::string& kind) {
  if (kind == "local") return config::ForwardKind::kLocal;
  if (kind == "remote") return config::ForwardKind::kRemote;
  if (kind == "dynamic") return config::ForwardKind::kDynamic;
  return MakeError("control", "\"kind\" must be \"local\", \"remote\" or \"dynamic\"");
}

// The request's "kind", when it has one.
Result<std::optional<config::ForwardKind>> OptionalKind(const control::Json& request) {
  auto kind = control::OptionalStringField(request, "kind");
  if (!kind.ok()) return kind.take_error();
  if (!kind->has_value()) return std::optional<config::ForwardKind>();
  auto named = KindNamed(**kind);
  if (!named.ok()) return named.take_error();
  return std::optional<config::ForwardKind>(*named);
}

}  // namespace

ControlApi::ControlApi(Daemon& daemon, std::string host_alias)
    : daemon_(daemon), alias_(std::move(host_alias)) {}

void ControlApi::Register(control::ControlServer& server) {
  server.Register("status",
                  [this](const control::Json&) -> Result<control::Json> { return StatusJson(); });
  server.Register("stop", [this](const control::Json&) -> Result<control::Json> {
    daemon_.StopSoon("tether down");  // the reply goes first
    return control::Json{{"stopping", true}};
  });
  server.Register("ping", [](const control::Json&) -> Result<control::Json> {
    return control::Json{{"pong", true}};
  });
  server.Register("forward", [this](const control::Json& r) { return AddForward(r); });
  server.Register("cancel", [this](const control::Json& r) { return CancelForward(r); });
  server.Register("env", [this](const control::Json& r) { return ProxyEnv(r); });
  server.Register("proxy", [this](const control::Json& r) { return AddProxy(r); });
}

nlohmann::json ControlApi::ForwardJson(const forward::Forward& f) {
  const auto& st = *f.stats();
  nlohmann::json j{{"kind", f.kind_name()},
                   {"spec", f.spec().ToString()},
                   {"listen", f.listen_address()},
                   {"target", f.target_description()},
                   {"state", forward::ToString(f.state())},
                   {"error", f.error()},
                   {"live", st.live.load()},
                   {"total", st.total.load()},
                   {"failed", st.failed.load()},
                   {"refused",
                    {{"connections", st.refused_connections.load()},
                     {"handshakes", st.refused_handshakes.load()},
                     {"timeouts", st.handshake_timeouts.load()},
                     {"owner", st.refused_owner.load()}}},
                   {"bytes_in", st.bytes_in.load()},
                   {"bytes_out", st.bytes_out.load()},
                   {"rate_in_bps", static_cast<uint64_t>(st.rate_in_bps)},
                   {"rate_out_bps", static_cast<uint64_t>(st.rate_out_bps)}};
  if (f.access() != forward::Access::kNotApplicable) j["access"] = forward::ToString(f.access());
  if (auto squatter = f.squatter()) {
    j["squatted_by"] = {{"uid", squatter->uid}, {"account", squatter->account}};
  }
  return j;
}

nlohmann::json ControlApi::LanesJson(const DaemonStatus& status) {
  nlohmann::json open = nlohmann::json::array();
  for (const auto& lane : status.lanes) {
    open.push_back({{"number", lane.number},
                    {"state", ToString(lane.state)},
                    {"live", lane.live},
                    {"streams", lane.streams},
                    {"error", lane.error}});
  }
  return {{"wanted", status.lanes_wanted}, {"off", status.lanes_off}, {"open", open}};
}

nlohmann::json ControlApi::SessionsJson(const DaemonStatus& status) {
  return nlohmann::json{{"live", status.sessions_live},
                        {"waiting", status.sessions_waiting},
                        {"connections", status.connections}};
}

nlohmann::json ControlApi::ControlPathJson(const DaemonStatus& status) {
  if (!status.control_path) return nullptr;
  const ControlPathStatus& cp = *status.control_path;
  nlohmann::json out{{"path", cp.path}, {"state", ToString(cp.state)}, {"detail", cp.detail}};
  out["pid"] = cp.state == ControlPathState::kHeld && cp.holder_pid != 0
                   ? nlohmann::json(cp.holder_pid)
                   : nlohmann::json();
  return out;
}

nlohmann::json ControlApi::StatusJson() const {
  using nlohmann::json;
  DaemonStatus st = daemon_.Snapshot();
  json fwds = json::array();
  for (const auto& f : daemon_.forwards()) {
    json j = ForwardJson(*f);
    if (json a = daemon_.AutoForwardOf(*f); !a.is_null()) j["auto"] = std::move(a);
    fwds.push_back(std::move(j));
  }
  return json{{"host", st.host},
              {"state", ToString(st.state)},
              {"pid", st.pid},
              {"user", st.user},
              {"hostname", st.hostname},
              {"port", st.port},
              {"uptime_s", st.uptime.count()},
              {"rtt_ms", st.rtt ? json(st.rtt->count()) : json()},
              {"reconnects", st.reconnects},
              {"last_error", st.last_error},
              {"cipher", st.cipher},
              {"remote_system", st.remote_system},
              {"read_ahead", std::string(ssh::ToString(ssh::ReadAheadStatus()))},
              {"window_budget_used", st.window_budget_used},
              {"server_requests", st.server_requests},
              {"lanes", LanesJson(st)},
              {"sessions", SessionsJson(st)},
              {"control_path", ControlPathJson(st)},
              {"laptop_network", st.laptop_network},
              {"jump", st.jump},
              {"identity_files", st.identity_files},
              {"ssh_options", st.ssh_options},
              {"auto_forward", daemon_.AutoForwardStatus()},
              {"fast_exec", daemon_.FastExecStatus()},
              {"forwards", fwds}};
}

Result<control::Json> ControlApi::ProxyEnv(const control::Json&) {
  for (const auto& f : daemon_.forwards()) {
    std::optional<forward::ServerProxyStatus> proxy = f->server_proxy();
    if (!proxy) continue;
    control::Json reply{{"port", proxy->port},
                        {"state", forward::ToString(proxy->state)},
                        {"open", proxy->open},
                        {"access", forward::ToString(proxy->access)},
                        {"why", f->error()}};
    // The owner, known by uid, needs no token: none is handed out, so none ends up in a
    // proxy URL, a log or a shell's history.
    if (!proxy->open && proxy->access != forward::Access::kOwner) {
      reply["user"] = daemon_.proxy_credentials().username;
      reply["token"] = daemon_.proxy_credentials().password;
    }
    return reply;
  }
  return MakeError("proxy", alias_ + " has no server proxy",
                   "start it with `tether up " + alias_ + " --proxy`");
}

Result<control::Json> ControlApi::AddProxy(const control::Json& request) {
  auto port = control::OptionalIntField(request, "port", 1, 65535);
  if (!port.ok()) return port.take_error();
  auto open = control::OptionalBoolField(request, "open");
  if (!open.ok()) return open.take_error();
  auto upstream = control::OptionalStringField(request, "upstream");
  if (!upstream.ok()) return upstream.take_error();
  ProxyOptions options;
  options.port = static_cast<uint16_t>(port->value_or(ProxyOptions::kDefaultPort));
  options.open = open->value_or(false);
  options.upstream = upstream->value_or("");
  for (const auto& f : daemon_.forwards()) {
    if (f->server_proxy() && f->spec().listen.port == options.port) {
      return control::Json{{"added", false}, {"forward", ForwardJson(*f)}};  // runs already
    }
  }
  Status s = daemon_.EnableProxy(options);
  if (!s.ok()) return s.take_error();
  return control::Json{{"added", true}, {"forward", ForwardJson(*daemon_.forwards().back())}};
}

Result<control::Json> ControlApi::AddForward(const control::Json& request) {
  auto kind = OptionalKind(request);
  if (!kind.ok()) return kind.take_error();
  if (!kind->has_value()) {
    return MakeError("control",
                     "\"kind\" is missing: it must be \"local\", \"remote\" or \"dynamic\"");
  }
  auto text = control::StringField(request, "spec");
  if (!text.ok()) return text.take_error();
  auto spec = config::ParseForwardSpec(**kind, *text);
  if (!spec.ok()) return spec.take_error();
  bool added = false;
  auto fwd = daemon_.AddForwardSpec(*spec, &added);
  if (!fwd.ok()) return fwd.take_error();
  return control::Json{{"added", added}, {"forward", ForwardJson(**fwd)}};
}

Result<control::Json> ControlApi::CancelForward(const control::Json& request) {
  auto kind = OptionalKind(request);
  if (!kind.ok()) return kind.take_error();
  auto text = control::StringField(request, "spec");
  if (!text.ok()) return text.take_error();
  if (kind->has_value()) return CancelForwardAt(**kind, *text);
  // Without a kind: whichever forward listens there, laptop side first.
  auto as_local = CancelForwardAt(config::ForwardKind::kLocal, *text);
  if (as_local.ok()) return as_local;
  auto as_remote = CancelForwardAt(config::ForwardKind::kRemote, *text);
  if (as_remote.ok()) return as_remote;
  return as_local;
}

Result<control::Json> ControlApi::CancelForwardAt(config::ForwardKind kind,
                                                  const std::string& text) {
  // A whole spec, or only where it listens ("8000", "127.0.0.1:8000", a socket path), as
  // ssh -O cancel takes it.
  auto spec = config::ParseForwardSpec(kind, text);
  if (!spec.ok()) {
    auto listen_only = config::ParseForwardSpec(config::ForwardKind::kDynamic, text);
    if (!listen_only.ok()) return spec.take_error();
    listen_only->kind = kind;
    spec = std::move(listen_only);
  }
  forward::Forward* fwd = daemon_.FindForward(*spec);
  if (fwd == nullptr) {
    return MakeError("forward", "no forward listens on " + spec->listen.ToString(),
                     "`tether status " + alias_ + "` lists the forwards");
  }
  control::Json removed = ForwardJson(*fwd);
  daemon_.RemoveForward(*fwd);
  return control::Json{{"cancelled", removed}};
}

}  // namespace tether::daemon
