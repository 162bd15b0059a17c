#!/usr/bin/env bash
# A dead link and its return, tether against autossh, side by side in one run (DESIGN.md,
# "Figures to beat": dead link noticed; forward usable after the link returns, with no
# refused local connection).
#
# Two network namespaces, "laptop" and "server", joined by a veth pair 10.233.250.1/30 <->
# .2 that exists only inside them. In the server: an OpenSSH sshd on 10.233.250.2:22 and a
# python3 http.server (backlog 512) on its own 127.0.0.1. In the laptop, both forwarding
# to that server:
#   tether   tether up testhost -L 18080:127.0.0.1:HTTP     (defaults: keepalive 2 s x 3)
#   autossh  autossh -M 0 -N -o ServerAliveInterval=2 -o ServerAliveCountMax=2
#              -o ExitOnForwardFailure=yes -L 18081:127.0.0.1:HTTP testhost
#            with AUTOSSH_GATETIME=0 (restart ssh whenever it exits, even early on)
# Each round black-holes the link (iptables DROP on both ends: packets vanish, no RST, the
# link stays up, as a dead Wi-Fi) for BENCH_OUTAGE seconds, then restores it. Both tools
# live through the same outage at once, and the round measures for each:
#   noticed   seconds from the cut until it gives up the link: tether's `status --json`
#             state leaves "up"; autossh's ssh child exits (its PID, watched every 100 ms)
#   serving   seconds from the restore until an HTTP GET through its -L port is answered
#             (a new GET every 100 ms, overlapping, each allowed 5 s: one that tether holds
#             while the link is down counts when its answer arrives)
#   refused   of the local connects made every 200 ms during the outage, how many were
#             refused (ECONNREFUSED: no listener) rather than accepted
#
# Environment:
#   TETHER        tether binary (default ./build/src/tether)
#   BENCH_ROUNDS  rounds (default 3, at most 20)
#   BENCH_OUTAGE  seconds each black hole lasts (default 20, 5..120)
#   BENCH_JSON    also write the results there as JSON
#   BENCH_KEEP    if 1, keep the work directory (tether's, autossh's and sshd's logs)
# Needs root (ip netns, iptables), sshd, autossh, python3 (scripts/setup.sh installs them).
# Everything it starts is ended by PID, and both namespaces are deleted on exit.
# Exit status 1 if a measurement failed (a forward never served again).
set -euo pipefail

BENCH_NAME=reconnect_vs_autossh
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

tether=${TETHER:-./build/src/tether}
rounds=${BENCH_ROUNDS:-3}
outage=${BENCH_OUTAGE:-20}
json_out=${BENCH_JSON:-}
keep=${BENCH_KEEP:-0}

readonly SSHD=/usr/sbin/sshd
readonly PRIVSEP_DIR=/run/sshd
readonly NS_PREFIX=trb-  # trb-<pid>-laptop / trb-<pid>-server
readonly LAPTOP_IP=10.233.250.1
readonly SERVER_IP=10.233.250.2
readonly TETHER_PORT=18080 # the laptop namespace's own port space is empty
readonly AUTOSSH_PORT=18081
readonly HTTP_PORT=8000 # in the server namespace, on its 127.0.0.1
readonly START_TRIES=100 # x 0.1 s for something to come up
readonly EXIT_TRIES=30   # x 0.1 s for a process to exit after SIGTERM
readonly CMD_TIMEOUT=20  # s for any one ip/iptables/tether call


[[ $(id -u) -eq 0 ]] || die "needs root (ip netns, iptables)"
[[ -x $tether ]] || die "no tether binary at $tether (build it, or set TETHER=path)"
tether=$(realpath "$tether")
if ! [[ $rounds =~ ^[1-9][0-9]*$ ]] || ((rounds > 20)); then
  die "BENCH_ROUNDS must be 1..20"
fi
if ! [[ $outage =~ ^[1-9][0-9]*$ ]] || ((outage < 5 || outage > 120)); then
  die "BENCH_OUTAGE must be 5..120 seconds"
fi
[[ -x $SSHD ]] || die "$SSHD not found (scripts/setup.sh installs openssh-server)"
for tool in ip iptables iptables-restore autossh ssh ssh-keygen python3 ps; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"
done
python=$(command -v python3)

laptop=${NS_PREFIX}$$-laptop
server=${NS_PREFIX}$$-server
work=$(mktemp -d /tmp/tether-bench-XXXXXX)
chmod 700 "$work"
state=$work/state
mkdir -m 700 "$state"
made_ns=()
sshd_pid=""
http_pid=""
autossh_pid=""
probe_pid=""

# Background processes are started with a plain `ip netns exec NS CMD &` (never through a
# shell function, which would fork a subshell): ip execs the command in place, so $! is the
# command's own PID.

run_tether() { # ARGS...: tether inside the laptop namespace with our state directory
  timeout "$CMD_TIMEOUT" ip netns exec "$laptop" env TETHER_STATE_DIR="$state" "$tether" "$@"
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  set +e
  [[ -n $probe_pid ]] && stop_pid "$probe_pid"
  if [[ " ${made_ns[*]} " == *" $laptop "* ]]; then
    run_tether down --all >/dev/null 2>&1
    local f pid
    for f in "$state"/*.pid; do
      [[ -f $f ]] || continue
      pid=$(head -n1 "$f" | tr -dc 0-9)
      if [[ -n $pid ]] && alive "$pid"; then
        note "tether daemon $pid still running after 'down --all'; stopping it by PID"
        stop_pid "$pid"
      fi
    done
  fi
  [[ -n $autossh_pid ]] && stop_pid "$autossh_pid" # it ends its ssh child itself
  [[ -n $http_pid ]] && stop_pid "$http_pid"
  [[ -n $sshd_pid ]] && stop_pid "$sshd_pid"
  local ns
  for ns in "${made_ns[@]}"; do
    ns_kill_all "$ns" # anything left: sshd sessions, autossh's last ssh
    ipc netns del "$ns" 2>/dev/null || note "could not delete namespace $ns"
  done
  if [[ $keep == 1 ]]; then
    note "logs kept in $work (state/testhost.log, autossh.log, sshd.log)"
  else
    rm -rf -- "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

http_ok() { # NS PORT: a GET of 127.0.0.1:PORT inside NS answers 200
  timeout 5 ip netns exec "$1" "$python" - "$2" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open("http://127.0.0.1:%s/probe.txt" % sys.argv[1], timeout=3) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

# ---------------------------------------------------------------------------------------
# The network, the server, the two clients

remove_stale_ns
for ns in "$laptop" "$server"; do
  ipc netns add "$ns" || die "cannot create namespace $ns"
  made_ns+=("$ns")
  ipc -n "$ns" link set lo up
done
# Both ends are created inside the namespaces: the names never exist in the machine's own.
ipc -n "$laptop" link add tbv0 type veth peer name tbv1 netns "$server"
ipc -n "$laptop" addr add "$LAPTOP_IP/30" dev tbv0
ipc -n "$server" addr add "$SERVER_IP/30" dev tbv1
ipc -n "$laptop" link set tbv0 up
ipc -n "$server" link set tbv1 up
ipc netns exec "$laptop" iptables -S INPUT >/dev/null 2>&1 ||
  die "iptables does not work in a namespace (apt-get install iptables)"

# sshd in the server namespace, with keys and configs of its own (as scripts/testbed.sh).
write_sshd_files "$work" "ListenAddress $SERVER_IP" "Port 22"
echo "$SERVER_IP $(cut -d' ' -f1,2 "$work/host_ed25519.pub")" >"$work/known_hosts"
cat >"$work/ssh_config" <<EOF
Host testhost
  HostName $SERVER_IP
  Port 22
  User $(id -un)
  IdentityFile $work/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $work/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
EOF
chmod 600 "$work/known_hosts" "$work/ssh_config"
start_sshd_in "$server" "$work" "$SERVER_IP port 22"

# The HTTP server: python3's threading http.server, with a listen backlog of 512 rather
# than socketserver's 5. On reconnect tether opens every connection it held during the
# outage at once; with a backlog of 5, sshd's connections to the server would wait out SYN
# retransmissions, and the bench would time the server rather than the tunnel.
mkdir "$work/www"
echo "through the link" >"$work/www/probe.txt"
cat >"$work/http_server.py" <<'EOF'
import functools, http.server, sys

class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 512
    daemon_threads = True

class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

handler = functools.partial(Quiet, directory=sys.argv[2])
Server(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
EOF
ip netns exec "$server" "$python" "$work/http_server.py" "$HTTP_PORT" "$work/www" \
  </dev/null >"$work/http.log" 2>&1 &
http_pid=$!
wait_until "$START_TRIES" http_ok "$server" "$HTTP_PORT" || die "http.server did not start"

# -v: the daemon log (kept with BENCH_KEEP=1) shows each connection and when it closed.
run_tether -F "$work/ssh_config" -v up testhost -L "$TETHER_PORT:127.0.0.1:$HTTP_PORT" \
  >"$work/tether-up.out" 2>&1 || die "tether up failed: $(tail -n 5 "$work/tether-up.out")"

ip netns exec "$laptop" env AUTOSSH_GATETIME=0 AUTOSSH_LOGLEVEL=7 \
  AUTOSSH_LOGFILE="$work/autossh.log" autossh -M 0 -N -F "$work/ssh_config" \
  -o ServerAliveInterval=2 -o ServerAliveCountMax=2 -o ExitOnForwardFailure=yes \
  -L "$AUTOSSH_PORT:127.0.0.1:$HTTP_PORT" testhost \
  </dev/null >"$work/autossh.out" 2>&1 &
autossh_pid=$!

wait_until "$START_TRIES" http_ok "$laptop" "$TETHER_PORT" || die "tether's forward does not serve"
wait_until "$START_TRIES" http_ok "$laptop" "$AUTOSSH_PORT" ||
  die "autossh's forward does not serve: $(tail -n 5 "$work/autossh.log" "$work/autossh.out")"

# ---------------------------------------------------------------------------------------
# The rounds: one python3 process in the laptop namespace runs them, so that its probes'
# sockets are the laptop's. It cuts and restores the link itself (iptables-restore in both
# namespaces, through `ip netns exec`); the rules die with the namespaces if it is killed.

results=$work/results.jsonl
ip netns exec "$laptop" env TETHER_STATE_DIR="$state" "$python" - "$tether" "$autossh_pid" \
  "$TETHER_PORT" "$AUTOSSH_PORT" "$rounds" "$outage" "$laptop" "$server" "$results" <<'EOF' &
import errno, json, os, socket, subprocess, sys, threading, time

(tether, autossh_pid, tether_port, autossh_port, rounds, outage, laptop_ns, server_ns,
 results) = sys.argv[1:]
autossh_pid, tether_port, autossh_port = int(autossh_pid), int(tether_port), int(autossh_port)
rounds, outage = int(rounds), int(outage)

NOTICE_BOUND = 30.0   # s after the cut: a tool that noticed nothing by then gets "-"
SERVE_BOUND = 60.0    # s after the restore: the same for serving again
SETTLE = 4.0          # s of a healthy link before each cut

def log(msg):
    print("reconnect_vs_autossh: " + msg, file=sys.stderr, flush=True)

def blackhole(on):
    op = "-I" if on else "-D"
    for ns, ifname in ((laptop_ns, "tbv0"), (server_ns, "tbv1")):
        rules = "*filter\n%s INPUT -i %s -j DROP\n%s FORWARD -i %s -j DROP\nCOMMIT\n" % (
            op, ifname, op, ifname)
        subprocess.run(["ip", "netns", "exec", ns, "iptables-restore", "--noflush"],
                       input=rules.encode(), check=True, timeout=20)

def tether_state():
    try:
        r = subprocess.run([tether, "status", "--json"], capture_output=True, timeout=5)
        return json.loads(r.stdout)["hosts"][0]
    except Exception:
        return {}

def ssh_children():
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[1]) == autossh_pid and fields[0] != "Z":
                kids.append(int(d))
        except (OSError, IndexError, ValueError):
            pass
    return kids

def get(port, timeout):
    """One HTTP GET through the forward; True if it answered 200."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"GET /probe.txt HTTP/1.0\r\nHost: probe\r\n\r\n")
            data = b""
            while len(data) < 12:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False

def wait_serving(port, since, bound):
    """A GET every 100 ms, each on a thread of its own and allowed 5 s, until one is
    answered: seconds from `since` to the first answer. Overlapping, so that a connection
    that waits (tether holds those made while the link is down) cannot hide a forward that
    already serves new ones."""
    answers = []
    lock = threading.Lock()
    answered = threading.Event()
    def one():
        if get(port, 5.0):
            with lock:
                answers.append(time.monotonic() - since)
            answered.set()
    threads = []
    deadline = time.monotonic() + bound
    while not answered.is_set() and time.monotonic() < deadline:
        t = threading.Thread(target=one, daemon=True)
        t.start()
        threads.append(t)
        answered.wait(0.1)
    for t in threads:
        t.join()
    return min(answers) if answers else None

def connect_probe(port, stop, counts):
    """A connect every 200 ms until `stop`: accepted or refused (or neither)."""
    while not stop.is_set():
        tried = time.monotonic()
        s = socket.socket()
        s.settimeout(1.0)
        try:
            s.connect(("127.0.0.1", port))
            counts["accepted"] += 1
        except ConnectionRefusedError:
            counts["refused"] += 1
        except OSError:
            counts["other"] += 1
        finally:
            s.close()
        stop.wait(max(0.0, tried + 0.2 - time.monotonic()))

def watch(cond, since, bound, out, key):
    deadline = since + bound
    while time.monotonic() < deadline:
        if cond():
            out[key] = time.monotonic() - since
            return
        time.sleep(0.1)
    out[key] = None

def healthy():
    return (tether_state().get("state") == "up" and get(tether_port, 2.0)
            and get(autossh_port, 2.0) and len(ssh_children()) == 1)

failed = False
with open(results, "w") as out:
    for n in range(1, rounds + 1):
        deadline = time.monotonic() + 60
        while not healthy() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not healthy():
            log("round %d: the forwards did not come back to health within 60 s" % n)
            failed = True
            break
        time.sleep(SETTLE)
        before = tether_state().get("reconnects", 0)
        kids = ssh_children()
        child = kids[0] if kids else -1
        r = {"round": n}
        counts = {p: {"accepted": 0, "refused": 0, "other": 0}
                  for p in ("tether", "autossh")}
        stop = threading.Event()
        blackhole(True)
        cut = time.monotonic()
        threads = [
            threading.Thread(target=watch, args=(
                lambda: tether_state().get("state", "up") != "up", cut, NOTICE_BOUND, r,
                "tether_noticed_s")),
            threading.Thread(target=watch, args=(
                lambda: child not in ssh_children(), cut, NOTICE_BOUND, r,
                "autossh_noticed_s")),
            threading.Thread(target=connect_probe, args=(tether_port, stop, counts["tether"])),
            threading.Thread(target=connect_probe, args=(autossh_port, stop, counts["autossh"])),
        ]
        for t in threads:
            t.start()
        time.sleep(max(0.0, cut + outage - time.monotonic()))
        stop.set()
        blackhole(False)
        back = time.monotonic()
        served = {}
        servers = [threading.Thread(target=lambda k=k, p=p: served.__setitem__(
            k, wait_serving(p, back, SERVE_BOUND)))
                   for k, p in (("tether", tether_port), ("autossh", autossh_port))]
        for t in servers:
            t.start()
        for t in threads + servers:
            t.join()
        r["tether_serving_s"] = served.get("tether")
        r["autossh_serving_s"] = served.get("autossh")
        for k in ("tether", "autossh"):
            r[k + "_refused"] = counts[k]["refused"]
            r[k + "_probes"] = sum(counts[k].values())
        r["tether_reconnects"] = tether_state().get("reconnects", 0) - before
        if r["tether_serving_s"] is None or r["autossh_serving_s"] is None:
            failed = True
        log("round %d: %s" % (n, json.dumps(r)))
        out.write(json.dumps(r) + "\n")
        out.flush()
sys.exit(1 if failed else 0)
EOF
probe_pid=$!
probe_rc=0
wait "$probe_pid" || probe_rc=$?
probe_pid=""

openssh_version=$(ssh -V 2>&1)
autossh_version=$(autossh -V 2>&1)
python3 - "$results" "$outage" "$json_out" "$openssh_version" "$autossh_version" <<'EOF'
import json, math, statistics, sys, time
path, outage, json_out, openssh_version, autossh_version = sys.argv[1:]
rows = [json.loads(line) for line in open(path) if line.strip()]

def fmt(x, f="%.2f"):
    return "-" if x is None else f % x

def ratio(t, a):
    return None if t is None or a is None or a == 0 else t / a

def median(key):
    xs = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(xs) if xs else None

head = ("round", "noticed tether s", "noticed autossh s", "ratio",
        "serving tether s", "serving autossh s", "ratio",
        "refused tether", "refused autossh")
table = [head]
for r in rows:
    table.append((str(r["round"]),
                  fmt(r["tether_noticed_s"]), fmt(r["autossh_noticed_s"]),
                  fmt(ratio(r["tether_noticed_s"], r["autossh_noticed_s"])),
                  fmt(r["tether_serving_s"]), fmt(r["autossh_serving_s"]),
                  fmt(ratio(r["tether_serving_s"], r["autossh_serving_s"])),
                  "%d/%d" % (r["tether_refused"], r["tether_probes"]),
                  "%d/%d" % (r["autossh_refused"], r["autossh_probes"])))
med = {k: median(k) for k in ("tether_noticed_s", "autossh_noticed_s", "tether_serving_s",
                              "autossh_serving_s")}
refused = {k: sum(r[k + "_refused"] for r in rows) for k in ("tether", "autossh")}
probes = {k: sum(r[k + "_probes"] for r in rows) for k in ("tether", "autossh")}
table.append(("median",
              fmt(med["tether_noticed_s"]), fmt(med["autossh_noticed_s"]),
              fmt(ratio(med["tether_noticed_s"], med["autossh_noticed_s"])),
              fmt(med["tether_serving_s"]), fmt(med["autossh_serving_s"]),
              fmt(ratio(med["tether_serving_s"], med["autossh_serving_s"])),
              "%d/%d" % (refused["tether"], probes["tether"]),
              "%d/%d" % (refused["autossh"], probes["autossh"])))
width = [max(len(row[i]) for row in table) for i in range(len(head))]
print("dead link and return: %s s black hole, %d round(s); tether defaults vs %s "
      "(ServerAliveInterval=2, CountMax=2, AUTOSSH_GATETIME=0), %s"
      % (outage, len(rows), autossh_version, openssh_version))
print("ratio = tether / autossh (below 1: tether is faster); refused = local connects "
      "refused / made during the outage")
for row in table:
    print("  ".join(c.rjust(width[i]) for i, c in enumerate(row)))

if json_out:
    doc = {
        "benchmark": "reconnect_vs_autossh",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "outage_s": int(outage),
        "openssh_version": openssh_version,
        "autossh_version": autossh_version,
        "rounds": rows,
        "median": {k: (None if v is None else round(v, 3)) for k, v in med.items()},
        "refused": refused,
        "probes": probes,
    }
    with open(json_out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
EOF

((probe_rc == 0)) || {
  note "a measurement failed (see above); autossh log tail:"
  tail -n 5 "$work/autossh.log" >&2 || true
  exit 1
}
