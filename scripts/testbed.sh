#!/usr/bin/env bash
# A throwaway OpenSSH sshd on a free 127.0.0.1 port, for the demo and the benchmarks: the
# shell twin of tests/e2e/testbed.cc. It never touches the machine's own sshd or ~/.ssh.
#
#   scripts/testbed.sh start DIR   create DIR (new or empty) and start sshd; prints only errors
#   scripts/testbed.sh stop DIR    end that sshd and its sessions by PID, then remove DIR
#
# DIR afterwards:
#   port, sshd.pid, sshd.log (sshd's stderr), sshd_config, authorized_keys
#   host_ed25519[.pub], id_ed25519[.pub] (authorized), wrong_ed25519[.pub] (not authorized)
#   known_hosts   [127.0.0.1]:PORT <host key>
#   ssh_config    Host demo and Host testhost -> this sshd, as the current user, id_ed25519,
#                 strict host key checking against known_hosts, BatchMode
# Use: ssh -F DIR/ssh_config testhost ...   tether -F DIR/ssh_config up demo -L ...
set -euo pipefail

# $TETHER_TEST_SSHD picks another sshd, e.g. OpenSSH 10.0 from scripts/openssh10.sh;
# $TESTBED_SSHD_EXTRA adds lines to its sshd_config (a bench's "SetEnv HOME=...").
readonly SSHD=${TETHER_TEST_SSHD:-/usr/sbin/sshd}
# Debian's sshd refuses to start as root without its privilege-separation directory, and a
# fresh container has none (no sshd ever ran there).
readonly PRIVSEP_DIR=/run/sshd
readonly MARKER="# Written by scripts/testbed.sh"
readonly START_TRIES=100 # x 0.1 s: sshd listens within 10 s or we give up
readonly PORT_ATTEMPTS=3 # another process may take the free port we picked

die() {
  echo "testbed.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 start DIR | stop DIR" >&2
  exit 2
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

alive() { # PID: running and not a zombie (PID 1 here may not reap orphans)
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [[ -n $state && $state != Z* ]]
}

descendants() { # PID: every live descendant, children first
  local table
  table=$(ps -eo pid=,ppid=)
  awk -v root="$1" '
    { parent[$1] = $2; order[NR] = $1 }
    END {
      # Bounded: at most one pass per process.
      for (pass = 0; pass < NR; pass++) {
        grew = 0
        for (i = 1; i <= NR; i++) {
          p = order[i]
          if (!(p in mark) && (parent[p] == root || (parent[p] in mark))) { mark[p] = 1; grew = 1 }
        }
        if (!grew) break
      }
      for (p in mark) print p
    }' <<<"$table"
}

terminate() { # PIDS...: SIGTERM, wait up to 3 s, SIGKILL, wait up to 2 s
  (($# > 0)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  local i p left
  for ((i = 0; i < 30; i++)); do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    ((left)) || return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
  for ((i = 0; i < 20; i++)); do
    left=0
    for p in "$@"; do alive "$p" && left=1; done
    ((left)) || return 0
    sleep 0.1
  done
  echo "testbed.sh: still alive after SIGKILL: $*" >&2
}

# The sshd of DIR, if DIR/sshd.pid names a live sshd started with DIR/sshd_config (never a
# process that merely reused the PID).
sshd_pid_of() {
  local dir=$1 pid
  [[ -f $dir/sshd.pid ]] || return 1
  pid=$(head -n1 "$dir/sshd.pid" | tr -dc 0-9)
  [[ -n $pid ]] || return 1
  alive "$pid" || return 1
  # sshd keeps its arguments in its process title; its stderr is our log in any case.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-f $dir/sshd_config" ||
    [[ $(readlink "/proc/$pid/fd/2" 2>/dev/null) == "$dir/sshd.log" ]] || return 1
  echo "$pid"
}

write_sshd_config() { # DIR PORT
  cat >"$1/sshd_config" <<EOF
$MARKER
ListenAddress 127.0.0.1
Port $2
HostKey $1/host_ed25519
PidFile $1/sshd.pid
AuthorizedKeysFile $1/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
MaxStartups 100
LogLevel VERBOSE
PrintMotd no
Subsystem sftp internal-sftp
${TESTBED_SSHD_EXTRA:-}
EOF
  chmod 600 "$1/sshd_config"
}

write_client_files() { # DIR PORT
  local dir=$1 port=$2 user host
  user=$(id -un)
  host=$(cut -d' ' -f1,2 "$dir/host_ed25519.pub")
  echo "[127.0.0.1]:$port $host" >"$dir/known_hosts"
  {
    echo "$MARKER"
    local alias
    for alias in demo testhost; do
      cat <<EOF
Host $alias
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $dir/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
EOF
    done
  } >"$dir/ssh_config"
  chmod 600 "$dir/known_hosts" "$dir/ssh_config"
  echo "$port" >"$dir/port"
}

# Starts sshd on PORT; 0 once it listens, 1 if it exited (e.g. the port was taken).
launch() { # DIR PORT
  local dir=$1 port=$2 pid i offset
  offset=$(stat -c %s "$dir/sshd.log" 2>/dev/null || echo 0)
  "$SSHD" -D -e -f "$dir/sshd_config" </dev/null >>"$dir/sshd.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/sshd.pid" # sshd writes the same PID there itself (PidFile)
  for ((i = 0; i < START_TRIES; i++)); do
    if ! alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    # Its own log line, rather than a probe connection that would clutter the log.
    if tail -c +"$((offset + 1))" "$dir/sshd.log" |
      grep -q "Server listening on 127.0.0.1 port $port\."; then
      return 0
    fi
    sleep 0.1
  done
  terminate "$pid"
  die "sshd did not listen on port $port within 10 s; log: $dir/sshd.log"
}

cmd_start() {
  local dir=$1 key port attempt
  [[ -x $SSHD ]] || die "$SSHD not found (apt-get install openssh-server, or scripts/setup.sh)"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [[ -z $(ls -A "$dir") ]] || die "$dir is not empty"
  chmod 700 "$dir"
  if [[ $(id -u) -eq 0 && ! -d $PRIVSEP_DIR ]]; then
    mkdir -p "$PRIVSEP_DIR"
    chmod 755 "$PRIVSEP_DIR"
  fi
  for key in host_ed25519 id_ed25519 wrong_ed25519; do
    ssh-keygen -q -t ed25519 -N '' -C "tether-testbed-$key" -f "$dir/$key" </dev/null ||
      die "ssh-keygen failed for $dir/$key"
  done
  cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"
  : >"$dir/sshd.log"
  for ((attempt = 1; attempt <= PORT_ATTEMPTS; attempt++)); do
    port=$(free_port)
    write_sshd_config "$dir" "$port"
    if launch "$dir" "$port"; then
      write_client_files "$dir" "$port"
      return 0
    fi
  done
  echo "testbed.sh: sshd failed to start; the end of $dir/sshd.log:" >&2
  tail -n 20 "$dir/sshd.log" >&2
  exit 1
}

cmd_stop() {
  local dir=$1 pid
  [[ -d $dir ]] || return 0
  dir=$(cd "$dir" && pwd)
  if ! head -n1 "$dir/sshd_config" 2>/dev/null | grep -qxF "$MARKER"; then
    die "$dir was not made by testbed.sh start; not removing it"
  fi
  if pid=$(sshd_pid_of "$dir"); then
    # Sessions first (the listener reaps them), so no connection outlives the server.
    local round kids
    for ((round = 0; round < 3; round++)); do
      mapfile -t kids < <(descendants "$pid")
      ((${#kids[@]} > 0)) || break
      terminate "${kids[@]}"
    done
    terminate "$pid"
  fi
  rm -rf -- "$dir"
}

(($# == 2)) || usage
case $1 in
  start) cmd_start "$2" ;;
  stop) cmd_stop "$2" ;;
  *) usage ;;
esac
