#!/usr/bin/env bash
# -L throughput over loopback, and the CPU it costs, tether against OpenSSH, side by side in
# one run (DESIGN.md: absolute figures drift on shared machines, the ratio does not).
#
# One throwaway sshd (scripts/testbed.sh), one iperf3 server on 127.0.0.1. For each cipher,
# `ssh -N -L` and `tether up -L` forward to that iperf3 server, and iperf3 measures through
# each of them, with 1 and with 8 parallel streams, in both directions:
#   upload    iperf3 client -> forward -> iperf3 server   (laptop to server)
#   download  the same with -R                             (server to laptop)
# Same sshd, same cipher, same iperf3, one after the other.
# CPU: user + system seconds over the run (bench/cpu_seconds.py) of the client (the ssh
# process, or the tether daemon with all its threads) and of the sshd serving it (the
# testbed sshd's process tree), divided by the gigabytes iperf3 received: cpu-s/GB. The
# client's is the figure tether controls; sshd's shows what our windows cost the server.
#
# Environment:
#   TETHER         tether binary (default ./build/src/tether)
#   BENCH_SECONDS  seconds per iperf3 run (default 5; no ramp-up is left out, so the bytes
#                  and the CPU seconds cover the same span)
#   BENCH_CIPHERS  space-separated (default "chacha20-poly1305@openssh.com aes128-gcm@openssh.com")
#   BENCH_STREAMS  parallel stream counts, space-separated (default "1 8")
#   BENCH_LANES    tether up --lanes N (default: tether's own default)
#   BENCH_JSON     also write the results there as JSON
# ssh gets the cipher with -o Ciphers=...; tether gets a copy of the ssh_config with a
# Ciphers line in the Host block. Exit status 1 if any measurement failed.
set -euo pipefail

BENCH_NAME=forward_throughput
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

root=$(cd "$(dirname "$0")/.." && pwd)
tether=${TETHER:-./build/src/tether}
seconds=${BENCH_SECONDS:-5}
json_out=${BENCH_JSON:-}
read -r -a ciphers <<<"${BENCH_CIPHERS:-chacha20-poly1305@openssh.com aes128-gcm@openssh.com}"
read -r -a stream_counts <<<"${BENCH_STREAMS:-1 8}"
lanes=${BENCH_LANES:-}
cpu_seconds=$root/bench/cpu_seconds.py

readonly LISTEN_TRIES=100 # x 0.1 s for a port to listen
readonly EXIT_TRIES=30    # x 0.1 s for a process to exit after its run or SIGTERM

[[ -x $tether ]] || die "no tether binary at $tether (build it, or set TETHER=path)"
tether=$(realpath "$tether")
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
((seconds <= 600)) || die "BENCH_SECONDS must be at most 600"
((${#ciphers[@]} > 0)) || die "BENCH_CIPHERS is empty"
((${#stream_counts[@]} > 0)) || die "BENCH_STREAMS is empty"
for n in "${stream_counts[@]}"; do
  if ! [[ $n =~ ^[1-9][0-9]*$ ]] || ((n > 64)); then die "BENCH_STREAMS: '$n' is not 1..64"; fi
done
[[ -z $lanes || $lanes =~ ^[0-8]$ ]] || die "BENCH_LANES must be 0..8"
lanes_args=()
[[ -n $lanes ]] && lanes_args=(--lanes "$lanes")
for tool in iperf3 ssh python3 ss; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"
done

work=$(mktemp -d /tmp/tether-bench-XXXXXX)
export TETHER_STATE_DIR=$work/state
mkdir -m 700 "$TETHER_STATE_DIR"
ssh_pid=""
iperf_pid=""

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  set +e
  [[ -n $ssh_pid ]] && stop_pid "$ssh_pid"
  [[ -n $iperf_pid ]] && stop_pid "$iperf_pid"
  timeout 20 "$tether" down --all >/dev/null 2>&1
  local f pid
  for f in "$TETHER_STATE_DIR"/*.pid; do
    [[ -f $f ]] || continue
    pid=$(head -n1 "$f" | tr -dc 0-9)
    if [[ -n $pid ]] && alive "$pid"; then
      note "tether daemon $pid still running after 'down --all'; stopping it by PID"
      stop_pid "$pid"
    fi
  done
  "$root/scripts/testbed.sh" stop "$work/sshd"
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { # PORT: something listens on 127.0.0.1:PORT (asked of the kernel: a probe
  # connection would reach the one-off iperf3 server and use it up)
  [[ -n $(ss -Hltn "sport = :$1") ]]
}

wait_listening() { # PORT [PID that must stay alive]
  local i
  for ((i = 0; i < LISTEN_TRIES; i++)); do
    listening "$1" && return 0
    if [[ -n ${2:-} ]] && ! alive "$2"; then return 1; fi
    sleep 0.1
  done
  return 1
}

per_gb() { # CPU_BEFORE CPU_AFTER BYTES: CPU seconds per GB
  python3 -c 'import sys; a, b, n = map(float, sys.argv[1:]); print("%.2f" % ((b - a) / (n / 1e9)))' "$@"
}

# One iperf3 run through forward port PORT with STREAMS parallel streams; sets mbps to Mbit/s
# as the receiver counted them (or nan), and client_cpg / server_cpg to the CPU seconds per GB
# received of the process tree CLIENT_PID and of sshd's. (Not in a $(...) subshell: cleanup
# must see iperf_pid if we are interrupted.)
mbps=nan
client_cpg=nan
server_cpg=nan
measure() { # PORT STREAMS upload|download CLIENT_PID LABEL
  local port=$1 streams=$2 direction=$3 client=$4 label=$5 c0 s0 c1 s1 bytes=0
  mbps=nan
  client_cpg=nan
  server_cpg=nan
  iperf3 -s -1 -B 127.0.0.1 -p "$iperf_port" >"$work/iperf-server.log" 2>&1 &
  iperf_pid=$!
  if ! wait_listening "$iperf_port" "$iperf_pid"; then
    note "$label: iperf3 server did not start: $(tail -n 3 "$work/iperf-server.log")"
    stop_pid "$iperf_pid"
    iperf_pid=""
    return
  fi
  local args=(-c 127.0.0.1 -p "$port" -t "$seconds" -P "$streams" -J --connect-timeout 5000)
  [[ $direction == download ]] && args+=(-R)
  c0=$("$cpu_seconds" "$client")
  s0=$("$cpu_seconds" "$sshd_pid")
  if timeout "$((seconds + 30))" iperf3 "${args[@]}" >"$work/run.json" 2>"$work/run.err"; then
    c1=$("$cpu_seconds" "$client")
    s1=$("$cpu_seconds" "$sshd_pid")
    read -r mbps bytes < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["end"]["sum_received"]
print("%.1f %d" % (s["bits_per_second"] / 1e6, s["bytes"]))' "$work/run.json" || echo nan 0)
    if [[ $mbps != nan ]] && ((bytes > 0)); then
      client_cpg=$(per_gb "$c0" "$c1" "$bytes")
      server_cpg=$(per_gb "$s0" "$s1" "$bytes")
    fi
  fi
  finish_iperf_run "$label"
}

"$root/scripts/testbed.sh" start "$work/sshd"
cfg=$work/sshd/ssh_config
sshd_pid=$(tr -dc 0-9 <"$work/sshd/sshd.pid")
iperf_port=$(free_port)
results=$work/results.tsv
: >"$results"
failed=0

for cipher in "${ciphers[@]}"; do
  # OpenSSH: ssh -N -L with the cipher on the command line; -v to check what was negotiated.
  ossh_port=$(free_port)
  ssh -v -F "$cfg" -N -o "Ciphers=$cipher" -o ExitOnForwardFailure=yes \
    -L "$ossh_port:127.0.0.1:$iperf_port" testhost 2>"$work/ssh-$cipher.log" &
  ssh_pid=$!
  ossh_ok=1
  if ! wait_listening "$ossh_port" "$ssh_pid"; then
    note "ssh -L with $cipher did not come up: $(tail -n 5 "$work/ssh-$cipher.log")"
    ossh_ok=0
  elif ! grep -q "cipher: $cipher" "$work/ssh-$cipher.log"; then
    note "ssh did not negotiate $cipher: $(grep 'cipher:' "$work/ssh-$cipher.log" | head -n 2)"
    ossh_ok=0
  fi

  # tether: the same Host with a Ciphers line.
  tether_cfg=$work/ssh_config.$cipher
  awk -v c="$cipher" '{ print } /^Host / { print "  Ciphers " c }' "$cfg" >"$tether_cfg"
  chmod 600 "$tether_cfg"
  tether_port=$(free_port)
  tether_ok=1
  tether_pid=""
  if ! timeout 60 "$tether" -F "$tether_cfg" up testhost "${lanes_args[@]}" \
    -L "$tether_port:127.0.0.1:$iperf_port" >"$work/tether-up.out" 2>&1; then
    note "tether up with $cipher failed: $(tail -n 5 "$work/tether-up.out")"
    tether_ok=0
  elif ! wait_listening "$tether_port"; then
    note "tether up with $cipher returned, but nothing listens on $tether_port"
    tether_ok=0
  else
    tether_pid=$(head -n1 "$TETHER_STATE_DIR/testhost.pid" | tr -dc 0-9)
  fi

  for streams in "${stream_counts[@]}"; do
    for direction in upload download; do
      o=(nan nan nan)
      t=(nan nan nan)
      what="$cipher, $streams stream(s) $direction"
      if ((ossh_ok)); then
        note "$what: openssh"
        measure "$ossh_port" "$streams" "$direction" "$ssh_pid" "openssh $what"
        o=("$mbps" "$client_cpg" "$server_cpg")
      fi
      if ((tether_ok)); then
        note "$what: tether"
        measure "$tether_port" "$streams" "$direction" "$tether_pid" "tether $what"
        t=("$mbps" "$client_cpg" "$server_cpg")
      fi
      [[ ${o[0]} == nan || ${t[0]} == nan ]] && failed=1
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cipher" "$streams" "$direction" \
        "${o[@]}" "${t[@]}" >>"$results"
    done
  done

  stop_pid "$ssh_pid"
  ssh_pid=""
  timeout 20 "$tether" down testhost >/dev/null 2>&1 || note "tether down testhost failed"
done

openssh_version=$(ssh -V 2>&1)
tether_version=$("$tether" --version 2>&1 | head -n1) || tether_version=unknown
python3 - "$results" "$seconds" "$json_out" "$openssh_version" "$tether_version" \
  "${lanes:-default}" "$(nproc)" <<'EOF'
import json, math, sys, time
path, seconds, json_out, openssh_version, tether_version, lanes, cores = sys.argv[1:]
seconds = int(seconds)
nan = float("nan")

def div(a, b):
    return a / b if b > 0 and not math.isnan(a) and not math.isnan(b) else nan

rows = []
with open(path) as f:
    for line in f:
        cipher, streams, direction, *v = line.rstrip("\n").split("\t")
        om, oc, osv, tm, tc, tsv = map(float, v)
        rows.append({"cipher": cipher, "streams": int(streams), "direction": direction,
                     "openssh_mbps": om, "tether_mbps": tm, "ratio": div(tm, om),
                     "ssh_cpu_s_per_gb": oc, "tether_cpu_s_per_gb": tc,
                     "sshd_cpu_s_per_gb_for_ssh": osv, "sshd_cpu_s_per_gb_for_tether": tsv})

def show(x, fmt):
    return "-" if math.isnan(x) else fmt % x

head = ("cipher", "run", "ssh Mbit/s", "tether Mbit/s", "tether/ssh",
        "cpu-s/GB: ssh", "tether", "sshd(ssh)", "sshd(tether)")
table = [head]
for r in rows:
    run = "%d %s" % (r["streams"], "up" if r["direction"] == "upload" else "down")
    table.append((r["cipher"], run, show(r["openssh_mbps"], "%.1f"),
                  show(r["tether_mbps"], "%.1f"), show(r["ratio"], "%.2fx"),
                  show(r["ssh_cpu_s_per_gb"], "%.2f"), show(r["tether_cpu_s_per_gb"], "%.2f"),
                  show(r["sshd_cpu_s_per_gb_for_ssh"], "%.2f"),
                  show(r["sshd_cpu_s_per_gb_for_tether"], "%.2f")))
width = [max(len(row[i]) for row in table) for i in range(len(head))]
print(f"-L throughput over loopback, {seconds} s per run; {openssh_version}; {tether_version} "
      f"(lanes: {lanes}); {cores} cores")
print("up = laptop to server, down = server to laptop; cpu-s/GB = CPU seconds (user + system) "
      "per GB received, of the client and of the sshd serving it")
for row in table:
    print("  ".join(c.ljust(width[i]) if i < 2 else c.rjust(width[i]) for i, c in enumerate(row)))

if json_out:
    clean = lambda x: None if math.isnan(x) else round(x, 3)
    doc = {
        "benchmark": "forward_throughput",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds_per_run": seconds,
        "openssh_version": openssh_version,
        "tether_version": tether_version,
        "lanes": lanes,
        "results": [{k: clean(v) if isinstance(v, float) else v for k, v in r.items()}
                    for r in rows],
    }
    with open(json_out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
EOF

exit "$failed"
