# Shared by the benches: messages, processes ended by PID with bounded waits, and the
# network namespaces they make (removed with everything inside, leftovers of crashed runs
# included). Source it after setting:
#   BENCH_NAME    the bench's name, for messages
#   EXIT_TRIES    x 0.1 s a process gets to exit after SIGTERM before SIGKILL
#   CMD_TIMEOUT   seconds any one `ip` command may take   (namespace benches)
#   NS_PREFIX     the bench's namespace prefix, NS_PREFIX<pid>-laptop|server (namespace benches)
#   SSHD, PRIVSEP_DIR, START_TRIES   sshd's binary, its privilege separation directory, and
#                 x 0.1 s it gets to listen (benches with an sshd of their own)
# shellcheck shell=bash

die() {
  echo "$BENCH_NAME: $*" >&2
  exit 1
}
note() { echo "$BENCH_NAME: $*" >&2; }

alive() { # PID: running and not a zombie
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n $st && $st != Z* ]]
}

stop_pid() { # PID: SIGTERM, bounded wait, SIGKILL
  local pid=$1 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < EXIT_TRIES; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}

ipc() { timeout "$CMD_TIMEOUT" ip "$@"; } # ip, bounded

free_port() { # a TCP port free on 127.0.0.1 now
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ns_kill_all() { # NS: every process inside, by PID: SIGTERM, bounded wait, SIGKILL
  local ns=$1 round pids p
  for ((round = 0; round < 3; round++)); do
    mapfile -t pids < <(ipc netns pids "$ns" 2>/dev/null)
    ((${#pids[@]} > 0)) || return 0
    for p in "${pids[@]}"; do stop_pid "$p"; done
  done
}

# The namespaces of earlier runs whose bench process is gone (a crash, a SIGKILL).
remove_stale_ns() {
  local name pid
  while read -r name _; do
    [[ $name =~ ^${NS_PREFIX}([0-9]+)-(laptop|server)$ ]] || continue
    pid=${BASH_REMATCH[1]}
    if [[ $pid != "$$" ]] && ! alive "$pid"; then
      note "removing $name, left over by an earlier run"
      ns_kill_all "$name"
      ipc netns del "$name" 2>/dev/null || true
    fi
  done < <(ipc netns list 2>/dev/null)
}

wait_until() { # TRIES CMD...: true once CMD succeeds, trying every 0.1 s
  local tries=$1 i
  shift
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# sshd's keys and config in WORK, as scripts/testbed.sh makes them: WORK/host_ed25519 and
# WORK/id_ed25519 (the client's, in WORK/authorized_keys), and WORK/sshd_config with the
# listen lines given ("ListenAddress A", "Port P") before the settings every bench shares.
write_sshd_files() { # WORK LISTEN_LINE...
  local work=$1 key
  shift
  if [[ ! -d $PRIVSEP_DIR ]]; then
    mkdir -p "$PRIVSEP_DIR"
    chmod 755 "$PRIVSEP_DIR"
  fi
  for key in host_ed25519 id_ed25519; do
    ssh-keygen -q -t ed25519 -N '' -C "tether-bench-$key" -f "$work/$key" </dev/null
  done
  cp "$work/id_ed25519.pub" "$work/authorized_keys"
  chmod 600 "$work/authorized_keys"
  {
    printf '%s\n' "$@"
    cat <<CONF
HostKey $work/host_ed25519
PidFile $work/sshd.pid
AuthorizedKeysFile $work/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
MaxStartups 100
LogLevel VERBOSE
PrintMotd no
CONF
  } >"$work/sshd_config"
  chmod 600 "$work/sshd_config"
}

# sshd -D with WORK/sshd_config in namespace NS, its log in WORK/sshd.log; sets sshd_pid,
# and waits START_TRIES x 0.1 s for "Server listening on LISTENING" (e.g. "10.0.0.2 port 22").
start_sshd_in() { # NS WORK LISTENING
  local ns=$1 work=$2 listening=$3
  : >"$work/sshd.log" # before sshd starts: the first look for its line may come first
  ip netns exec "$ns" "$SSHD" -D -e -f "$work/sshd_config" </dev/null \
    >>"$work/sshd.log" 2>&1 &
  # shellcheck disable=SC2034  # the caller's, ended by its cleanup
  sshd_pid=$!
  wait_until "$START_TRIES" grep -q "Server listening on $listening" "$work/sshd.log" ||
    die "sshd did not start: $(tail -n 5 "$work/sshd.log")"
}

# After one iperf3 client run: when mbps is nan, says why (from WORK/run.json and
# WORK/run.err); then ends the one-off server iperf_pid, which exits after its client on its
# own given a moment. Uses the caller's mbps, work and iperf_pid; clears iperf_pid.
finish_iperf_run() { # LABEL
  local i
  # shellcheck disable=SC2154  # mbps, work and iperf_pid are the caller's
  if [[ $mbps == nan ]]; then
    note "$1: iperf3 failed: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error",""))' "$work/run.json" 2>/dev/null) $(tail -n 3 "$work/run.err")"
  fi
  for ((i = 0; i < EXIT_TRIES; i++)); do
    alive "$iperf_pid" || break
    sleep 0.1
  done
  stop_pid "$iperf_pid"
  iperf_pid=""
}
