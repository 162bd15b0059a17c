#!/usr/bin/env bash
# Throughput on long links: -L forwarding, tether against `ssh -N -L`, over an emulated link
# of RTT 0, 50, 100 and 200 ms, one stream and 8 streams, each direction, side by side in one
# run, with plain TCP through the same link as the link-limit column (DESIGN.md, "Figures to
# beat": server-to-laptop at 100 ms >= 5x OpenSSH or up to the link).
#
# Two network namespaces, "laptop" and "server", joined by a veth pair 10.233.251.1/30 <->
# .2 that exists only inside them; TCP buffer maximums raised to 64 MiB inside both
# (net.ipv4.tcp_rmem/tcp_wmem are per namespace). In the server: an OpenSSH sshd on
# 10.233.251.2:22 and 127.0.0.1:22, and a one-off iperf3 server per measurement on port
# 5201. This kernel has no sch_netem, so the delay is the user-space delay line
# (build/tests/delay_relay) in the server namespace, in front of sshd as in
# tests/e2e/netbed_test.cc: for RTT R > 0 the laptop connects to
#   10.233.251.2:2222  relay, R/2 ms each way  -> 127.0.0.1:22    (ssh and tether)
#   10.233.251.2:5202  relay, R/2 ms each way  -> 127.0.0.1:5201  (plain TCP, the "tcp" column)
# each relay holding up to BENCH_RELAY_MIB per direction per connection (room for the
# bandwidth-delay product: 64 MiB carries 5 Gbit/s at 100 ms one way). For RTT 0 there is no
# relay: the laptop reaches sshd and iperf3 over the bare veth.
# In the laptop namespace, both forwarding to the server's 127.0.0.1:5201:
#   ssh      ssh -N -o ExitOnForwardFailure=yes -L 15201:127.0.0.1:5201 link-R
#   tether   tether up link-R -L 15202:127.0.0.1:5201
# and the iperf3 client measures, for each stream count and direction,
#   upload    iperf3 -c ... -P N        (laptop to server)
#   download  iperf3 -c ... -P N -R     (server to laptop)
# through the link without SSH (tcp), through ssh and through tether, one after the other.
# Each run lasts BENCH_SECONDS after 2 omitted seconds of ramp-up (iperf3 -O 2); the figure
# is the receiver's count, summed over the streams.
#
# What the "tcp" column is: the relay terminates TCP (the laptop's and the server's TCP see
# only their local hop), so plain TCP through it is bounded by the relay's buffer and CPU,
# not by a TCP window over the RTT: it is the most the emulated link can carry, the ceiling
# for the other two. Upload (laptop to server) on a long link is bounded for both tools by
# sshd's own channel window (OpenSSH: 2 MiB per channel, about 168 Mbit/s per stream at
# 100 ms), which no client can raise: expect about 1.0x there. All of it shares the machine's cores: sshd, ssh/tether, the relay and
# iperf3 compete for CPU, so the ratio (same run, same link) is the figure to read.
#
# Environment:
#   TETHER            tether binary (default ./build/src/tether)
#   DELAY_RELAY       delay line binary (default ./build/tests/delay_relay)
#   BENCH_RTTS        round-trip times in ms, space-separated (default "0 50 100 200")
#   BENCH_STREAMS     stream counts, space-separated (default "1 8")
#   BENCH_SECONDS     measured seconds per iperf3 run (default 8; 2 more are omitted first)
#   BENCH_CIPHER      cipher for both ssh and tether, as a Ciphers line in the ssh_config
#                     (default chacha20-poly1305@openssh.com, the default of both;
#                     e.g. aes128-gcm@openssh.com)
#   BENCH_RELAY_MIB   delay line buffer per direction per connection, MiB (default 64)
#   BENCH_LANES       tether up --lanes N (default: tether's own: none below 4 cores)
#   BENCH_JSON        also write the results there as JSON
#   BENCH_KEEP        if 1, keep the work directory (logs of sshd, ssh, tether, relays)
# Needs root (ip netns), sshd, iperf3, python3 (scripts/setup.sh installs them).
# Targets are printed, not asserted. Every process it starts is ended by PID, and both
# namespaces are deleted on exit. Exit status 1 if any measurement failed.
set -euo pipefail

BENCH_NAME=long_link
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

tether=${TETHER:-./build/src/tether}
relay_bin=${DELAY_RELAY:-./build/tests/delay_relay}
read -r -a rtts <<<"${BENCH_RTTS:-0 50 100 200}"
read -r -a stream_counts <<<"${BENCH_STREAMS:-1 8}"
seconds=${BENCH_SECONDS:-8}
cipher=${BENCH_CIPHER:-chacha20-poly1305@openssh.com}
relay_mib=${BENCH_RELAY_MIB:-64}
lanes=${BENCH_LANES:-}
json_out=${BENCH_JSON:-}
keep=${BENCH_KEEP:-0}

readonly SSHD=/usr/sbin/sshd
readonly PRIVSEP_DIR=/run/sshd
readonly NS_PREFIX=tll- # tll-<pid>-laptop / tll-<pid>-server
readonly LAPTOP_IP=10.233.251.1
readonly SERVER_IP=10.233.251.2
readonly SSHD_PORT=22
readonly SSH_RELAY_PORT=2222  # server namespace: delay line in front of sshd
readonly IPERF_PORT=5201      # server namespace: iperf3 server (all its addresses)
readonly TCP_RELAY_PORT=5202  # server namespace: delay line in front of iperf3
readonly OSSH_PORT=15201      # laptop namespace: ssh -L (its own port space is empty)
readonly TETHER_PORT=15202    # laptop namespace: tether -L
readonly OMIT_SECONDS=2       # iperf3 -O: ramp-up left out of the figure
readonly TCP_RMEM="4096 131072 67108864"
readonly TCP_WMEM="4096 16384 67108864"
readonly CORE_MEM_MAX=67108864
readonly START_TRIES=100 # x 0.1 s for something to come up
readonly EXIT_TRIES=30   # x 0.1 s for a process to exit after its run or SIGTERM
readonly CMD_TIMEOUT=20  # s for any one ip/sysctl/tether down call
readonly UP_TIMEOUT=60   # s for `tether up` (a handshake is ~10 round trips)


[[ $(id -u) -eq 0 ]] || die "needs root (ip netns)"
[[ -x $tether ]] || die "no tether binary at $tether (build it, or set TETHER=path)"
tether=$(realpath "$tether")
[[ -x $relay_bin ]] ||
  die "no delay_relay at $relay_bin (cmake --build build --target delay_relay, or set DELAY_RELAY)"
relay_bin=$(realpath "$relay_bin")
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
((seconds <= 600)) || die "BENCH_SECONDS must be at most 600"
if ! [[ $relay_mib =~ ^[1-9][0-9]*$ ]] || ((relay_mib > 1024)); then
  die "BENCH_RELAY_MIB must be 1..1024"
fi
[[ $cipher =~ ^[A-Za-z0-9@._-]+$ ]] || die "BENCH_CIPHER must be one cipher name"
[[ -z $lanes || $lanes =~ ^[0-8]$ ]] || die "BENCH_LANES must be 0..8"
lanes_args=()
[[ -n $lanes ]] && lanes_args=(--lanes "$lanes")
((${#rtts[@]} > 0)) || die "BENCH_RTTS is empty"
((${#stream_counts[@]} > 0)) || die "BENCH_STREAMS is empty"
for i in "${!rtts[@]}"; do
  r=${rtts[i]}
  if ! [[ $r =~ ^[0-9]+$ ]] || ((10#$r > 2000)); then die "BENCH_RTTS: '$r' is not 0..2000 (ms)"; fi
  rtts[i]=$((10#$r)) # "050" is 50, not octal
done
for n in "${stream_counts[@]}"; do
  if ! [[ $n =~ ^[1-9][0-9]*$ ]] || ((n > 64)); then die "BENCH_STREAMS: '$n' is not 1..64"; fi
done
[[ -x $SSHD ]] || die "$SSHD not found (scripts/setup.sh installs openssh-server)"
for tool in ip iperf3 ssh ssh-keygen sysctl python3 ss ps timeout; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"
done

laptop=${NS_PREFIX}$$-laptop
server=${NS_PREFIX}$$-server
work=$(mktemp -d /tmp/tether-bench-XXXXXX)
chmod 700 "$work"
state=$work/state
mkdir -m 700 "$state"
made_ns=()
sshd_pid=""
ssh_pid=""
iperf_pid=""
client_pid=""
relay_pids=()

# Background processes are started with a plain `ip netns exec NS CMD &` (never through a
# shell function, which would fork a subshell): ip execs the command in place, so $! is the
# command's own PID.

run_tether() { # TIMEOUT ARGS...: tether inside the laptop namespace with our state directory
  local t=$1
  shift
  timeout "$t" ip netns exec "$laptop" env TETHER_STATE_DIR="$state" "$tether" "$@"
}

tether_daemons_stop() { # after `down`: any daemon still running, by the PID in its pid file
  local f pid
  for f in "$state"/*.pid; do
    [[ -f $f ]] || continue
    pid=$(head -n1 "$f" | tr -dc 0-9)
    if [[ -n $pid ]] && alive "$pid"; then
      note "tether daemon $pid still running after 'down'; stopping it by PID"
      stop_pid "$pid"
    fi
  done
}

relays_stop() {
  local p
  for p in "${relay_pids[@]}"; do stop_pid "$p"; done
  relay_pids=()
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  set +e
  [[ -n $client_pid ]] && stop_pid "$client_pid" # timeout passes SIGTERM on to iperf3
  [[ -n $iperf_pid ]] && stop_pid "$iperf_pid"
  [[ -n $ssh_pid ]] && stop_pid "$ssh_pid"
  if [[ " ${made_ns[*]} " == *" $laptop "* ]]; then
    run_tether "$CMD_TIMEOUT" down --all >/dev/null 2>&1
    tether_daemons_stop
  fi
  relays_stop
  [[ -n $sshd_pid ]] && stop_pid "$sshd_pid"
  local ns
  for ns in "${made_ns[@]}"; do
    ns_kill_all "$ns" # anything left: sshd sessions, a stray iperf3
    ipc netns del "$ns" 2>/dev/null || note "could not delete namespace $ns"
  done
  if [[ $keep == 1 ]]; then
    note "logs kept in $work"
  else
    rm -rf -- "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { # NS PORT: something listens on PORT inside NS (asked of the kernel: a probe
  # connection would reach the one-off iperf3 server and use it up)
  [[ -n $(timeout 5 ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null) ]]
}

wait_listening() { # NS PORT [PID that must stay alive]
  local i
  for ((i = 0; i < START_TRIES; i++)); do
    listening "$1" "$2" && return 0
    if [[ -n ${3:-} ]] && ! alive "$3"; then return 1; fi
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------------------------------
# The network and the server

remove_stale_ns
for ns in "$laptop" "$server"; do
  ipc netns add "$ns" || die "cannot create namespace $ns"
  made_ns+=("$ns")
  ipc -n "$ns" link set lo up
  # Per-namespace TCP buffer maximums: with the default 4 MiB one stream would stop at the
  # socket buffer, and that is what we would measure.
  timeout "$CMD_TIMEOUT" ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_rmem="$TCP_RMEM" \
    net.ipv4.tcp_wmem="$TCP_WMEM" || die "cannot raise the TCP buffer maximums in $ns"
  # Read-only in a child namespace on some kernels: best effort (only explicit SO_*BUF
  # requests need them; autotuning goes by tcp_rmem/tcp_wmem).
  timeout "$CMD_TIMEOUT" ip netns exec "$ns" sysctl -q -w net.core.rmem_max="$CORE_MEM_MAX" \
    net.core.wmem_max="$CORE_MEM_MAX" >/dev/null 2>&1 || true
done
# Both ends are created inside the namespaces: the names never exist in the machine's own.
ipc -n "$laptop" link add tlv0 type veth peer name tlv1 netns "$server"
ipc -n "$laptop" addr add "$LAPTOP_IP/30" dev tlv0
ipc -n "$server" addr add "$SERVER_IP/30" dev tlv1
ipc -n "$laptop" link set tlv0 up
ipc -n "$server" link set tlv1 up

# sshd in the server namespace, with keys and configs of its own (as scripts/testbed.sh).
write_sshd_files "$work" "ListenAddress $SERVER_IP" "ListenAddress 127.0.0.1" "Port $SSHD_PORT"
host_key=$(cut -d' ' -f1,2 "$work/host_ed25519.pub")
{
  echo "$SERVER_IP $host_key"
  echo "[$SERVER_IP]:$SSH_RELAY_PORT $host_key"
} >"$work/known_hosts"
# One Host block per RTT: link-0 is the bare veth, link-R goes through the delay line.
for r in "${rtts[@]}"; do
  port=$SSHD_PORT
  ((r > 0)) && port=$SSH_RELAY_PORT
  cat <<EOF
Host link-$r
  HostName $SERVER_IP
  Port $port
  User $(id -un)
  IdentityFile $work/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $work/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  Ciphers $cipher
EOF
done >"$work/ssh_config"
chmod 600 "$work/known_hosts" "$work/ssh_config"
start_sshd_in "$server" "$work" "$SERVER_IP port $SSHD_PORT"

start_relay() { # RTT LISTEN_PORT CONNECT_PORT NAME: a delay line in the server namespace
  local rtt=$1 lport=$2 cport=$3 name=$4 half log pid i
  half=$(awk -v r="$rtt" 'BEGIN { printf "%g", r / 2 }')
  log=$work/relay-$name-$rtt.log
  : >"$log"
  ip netns exec "$server" "$relay_bin" --listen "$SERVER_IP:$lport" \
    --connect "127.0.0.1:$cport" --delay-ms "$half" --buffer-mib "$relay_mib" --quiet \
    </dev/null 2>"$log" &
  pid=$!
  relay_pids+=("$pid")
  for ((i = 0; i < START_TRIES; i++)); do
    grep -q "delay_relay: listening on" "$log" && return 0
    alive "$pid" || break
    sleep 0.1
  done
  die "delay_relay ($name, RTT $rtt) did not start: $(tail -n 3 "$log")"
}

# ---------------------------------------------------------------------------------------
# One measurement

# One iperf3 run through ADDR:PORT (from the laptop namespace); sets mbps to Mbit/s as the
# receiver counted them (all streams), or nan. (Not in a $(...) subshell: cleanup must see
# iperf_pid and client_pid if we are interrupted.)
mbps=nan
measure() { # ADDR PORT STREAMS upload|download LABEL
  local addr=$1 port=$2 streams=$3 direction=$4 label=$5
  : >"$work/iperf-server.log"
  ip netns exec "$server" iperf3 -s -1 -p "$IPERF_PORT" </dev/null \
    >"$work/iperf-server.log" 2>&1 &
  iperf_pid=$!
  mbps=nan
  if ! wait_listening "$server" "$IPERF_PORT" "$iperf_pid"; then
    note "$label: iperf3 server did not start: $(tail -n 3 "$work/iperf-server.log")"
    stop_pid "$iperf_pid"
    iperf_pid=""
    return
  fi
  local args=(-c "$addr" -p "$port" -P "$streams" -t "$seconds" -O "$OMIT_SECONDS" -J
    --connect-timeout 5000)
  [[ $direction == download ]] && args+=(-R)
  # In the background and waited for: a trapped SIGINT/SIGTERM interrupts `wait` at once,
  # where it would wait out a foreground command.
  timeout "$((seconds + OMIT_SECONDS + 30))" ip netns exec "$laptop" iperf3 "${args[@]}" \
    </dev/null >"$work/run.json" 2>"$work/run.err" &
  client_pid=$!
  local rc=0
  wait "$client_pid" || rc=$?
  client_pid=""
  if ((rc == 0)); then
    mbps=$(python3 - "$work/run.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    r = json.load(f)
print("%.1f" % (r["end"]["sum_received"]["bits_per_second"] / 1e6))
EOF
    ) || mbps=nan
  fi
  finish_iperf_run "$label"
}

# ---------------------------------------------------------------------------------------
# The runs

results=$work/results.tsv
: >"$results"
failed=0
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

for rtt in "${rtts[@]}"; do
  host=link-$rtt
  note "RTT $rtt ms"
  if ((rtt > 0)); then
    start_relay "$rtt" "$SSH_RELAY_PORT" "$SSHD_PORT" ssh
    start_relay "$rtt" "$TCP_RELAY_PORT" "$IPERF_PORT" tcp
    tcp_port=$TCP_RELAY_PORT
  else
    tcp_port=$IPERF_PORT
  fi

  # OpenSSH: ssh -N -L; -v to check what was negotiated.
  ip netns exec "$laptop" ssh -v -F "$work/ssh_config" -N -o ExitOnForwardFailure=yes \
    -L "$OSSH_PORT:127.0.0.1:$IPERF_PORT" "$host" </dev/null 2>"$work/ssh-$rtt.log" &
  ssh_pid=$!
  ossh_ok=1
  if ! wait_listening "$laptop" "$OSSH_PORT" "$ssh_pid"; then
    note "ssh -L at RTT $rtt did not come up: $(tail -n 5 "$work/ssh-$rtt.log")"
    ossh_ok=0
  elif ! grep -q "cipher: $cipher" "$work/ssh-$rtt.log"; then
    note "ssh did not negotiate $cipher: $(grep 'cipher:' "$work/ssh-$rtt.log" | head -n 2)"
    ossh_ok=0
  fi

  tether_ok=1
  if ! run_tether "$UP_TIMEOUT" -F "$work/ssh_config" up "$host" "${lanes_args[@]}" \
    -L "$TETHER_PORT:127.0.0.1:$IPERF_PORT" >"$work/tether-up-$rtt.out" 2>&1; then
    note "tether up at RTT $rtt failed: $(tail -n 5 "$work/tether-up-$rtt.out")"
    tether_ok=0
  elif ! wait_listening "$laptop" "$TETHER_PORT"; then
    note "tether up at RTT $rtt returned, but nothing listens on $TETHER_PORT"
    tether_ok=0
  fi

  for streams in "${stream_counts[@]}"; do
    for direction in upload download; do
      what="RTT $rtt ms, $streams stream(s) $direction"
      note "$what: tcp"
      measure "$SERVER_IP" "$tcp_port" "$streams" "$direction" "tcp $what"
      c=$mbps
      o=nan
      t=nan
      if ((ossh_ok)); then
        note "$what: openssh"
        measure 127.0.0.1 "$OSSH_PORT" "$streams" "$direction" "openssh $what"
        o=$mbps
      fi
      if ((tether_ok)); then
        note "$what: tether"
        measure 127.0.0.1 "$TETHER_PORT" "$streams" "$direction" "tether $what"
        t=$mbps
      fi
      [[ $c == nan || $o == nan || $t == nan ]] && failed=1
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rtt" "$streams" "$direction" "$c" "$o" "$t" \
        >>"$results"
    done
  done

  stop_pid "$ssh_pid"
  ssh_pid=""
  run_tether "$CMD_TIMEOUT" down "$host" >/dev/null 2>&1 || note "tether down $host failed"
  tether_daemons_stop
  relays_stop
done

openssh_version=$(ssh -V 2>&1)
tether_version=$("$tether" --version 2>&1 | head -n1) || tether_version=unknown
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$results" "$seconds" "$json_out" "$openssh_version" "$tether_version" "$cipher" \
  "$relay_mib" "$(nproc)" "$load_before" "$load_after" "${lanes:-default}" <<'EOF'
import json, math, sys, time
(path, seconds, json_out, openssh_version, tether_version, cipher, relay_mib, cores,
 load_before, load_after, lanes) = sys.argv[1:]
seconds, relay_mib = int(seconds), int(relay_mib)
nan = float("nan")

def div(a, b):
    return a / b if b > 0 and not math.isnan(a) and not math.isnan(b) else nan

rows = []
with open(path) as f:
    for line in f:
        rtt, streams, direction, c, o, t = line.rstrip("\n").split("\t")
        c, o, t = float(c), float(o), float(t)
        rows.append({"rtt_ms": int(rtt), "streams": int(streams), "direction": direction,
                     "tcp_mbps": c, "openssh_mbps": o, "tether_mbps": t,
                     "ratio": div(t, o), "tether_of_link": div(t, c)})

def show(x, fmt):
    return "-" if math.isnan(x) else fmt % x

print(f"-L throughput over an emulated link: {seconds} s per run (+2 s omitted), cipher "
      f"{cipher}, delay line buffer {relay_mib} MiB/direction/connection")
print(f"{openssh_version}; {tether_version} (lanes: {lanes}); {cores} cores, load average "
      f"{load_before} before, {load_after} after")
print("upload = laptop to server, download = server to laptop; Mbit/s as the receiver "
      "counted them, all streams; tcp = iperf3 through the same link without SSH")
head = ("", "tcp Mbit/s", "ssh Mbit/s", "tether Mbit/s", "tether/ssh")
for rtt in dict.fromkeys(r["rtt_ms"] for r in rows):
    where = "veth, no delay line" if rtt == 0 else "delay line %g ms each way" % (rtt / 2)
    print(f"\nRTT {rtt} ms ({where})")
    table = [head]
    for r in (r for r in rows if r["rtt_ms"] == rtt):
        label = "%d stream%s %s" % (r["streams"], "" if r["streams"] == 1 else "s",
                                    "up" if r["direction"] == "upload" else "down")
        table.append((label, show(r["tcp_mbps"], "%.1f"), show(r["openssh_mbps"], "%.1f"),
                      show(r["tether_mbps"], "%.1f"), show(r["ratio"], "%.2fx")))
    width = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(c.ljust(width[i]) if i == 0 else c.rjust(width[i])
                        for i, c in enumerate(row)))

def find(rtt, streams, direction):
    for r in rows:
        if (r["rtt_ms"], r["streams"], r["direction"]) == (rtt, streams, direction):
            return r
    return None

# The issue's targets: reported, not asserted.
LINK_SHARE = 0.9  # "up to the link": tether carries at least this share of plain TCP
targets = []
def target(name, rtt, streams, direction, need, link_ok=False):
    r = find(rtt, streams, direction)
    if r is None or math.isnan(r["ratio"]):
        verdict = "not measured"
    elif r["ratio"] >= need:
        verdict = "met"
    elif link_ok and not math.isnan(r["tether_of_link"]) and r["tether_of_link"] >= LINK_SHARE:
        verdict = "met (link limit)"
    else:
        verdict = "not met"
    targets.append({"target": name, "rtt_ms": rtt, "streams": streams,
                    "direction": direction, "need_ratio": need,
                    "ratio": None if r is None else r["ratio"],
                    "tether_of_link": None if r is None else r["tether_of_link"],
                    "verdict": verdict})

target("download at 100 ms, 1 stream: >= 5x OpenSSH or the link limit", 100, 1, "download",
       5.0, link_ok=True)
target("RTT 0, 1 stream up: >= 1.0x OpenSSH", 0, 1, "upload", 1.0)
target("RTT 0, 1 stream down: >= 1.0x OpenSSH", 0, 1, "download", 1.0)
target("RTT 0, 8 streams up (aggregate): >= 1.3x OpenSSH", 0, 8, "upload", 1.3)
target("RTT 0, 8 streams down (aggregate): >= 1.3x OpenSSH", 0, 8, "download", 1.3)
print("\ntargets (reported, not asserted; link limit = tether >= %d%% of tcp):"
      % round(LINK_SHARE * 100))
for t in targets:
    extra = ""
    if t["ratio"] is not None and not math.isnan(t["ratio"]):
        extra = " (%.2fx" % t["ratio"]
        if t["tether_of_link"] is not None and not math.isnan(t["tether_of_link"]):
            extra += ", %.0f%% of tcp" % (100 * t["tether_of_link"])
        extra += ")"
    print(f"  {t['target']}: {t['verdict']}{extra}")

if json_out:
    def clean(x):
        if isinstance(x, float):
            return None if math.isnan(x) else round(x, 3)
        return x
    doc = {
        "benchmark": "long_link",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds_per_run": seconds,
        "omitted_seconds": 2,
        "cipher": cipher,
        "lanes": lanes,
        "relay_buffer_mib": relay_mib,
        "openssh_version": openssh_version,
        "tether_version": tether_version,
        "cores": int(cores),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "results": [{k: clean(v) for k, v in r.items()} for r in rows],
        "targets": [{k: clean(v) for k, v in t.items()} for t in targets],
    }
    with open(json_out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
EOF

exit "$failed"
