# Shared by the benches: messages, processes ended by PID with bounded waits, and the
# network namespaces they make (removed with everything inside, leftovers of crashed runs
# included). Source it after setting:
#   BENCH_NAME    the bench's name, for messages
#   EXIT_TRIES    x 0.1 s a process gets to exit after SIGTERM before SIGKILL
#   CMD_TIMEOUT   seconds any one `ip` command may take   (namespace benches)
#   NS_PREFIX     the bench's namespace prefix, NS_PREFIX<pid>-laptop|server (namespace benches)
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
