#!/usr/bin/env bash
# A command over a shared connection: tether exec against OpenSSH's own ControlMaster
# (ssh -S) and a fresh ssh connection, against the same throwaway sshd in the same run.
# Each runs `true` BENCH_RUNS times, one after the other; the script prints the median and
# the 90th percentile in ms, and the ratios to OpenSSH's master.
#
# Environment:
#   TETHER      tether binary (default ./build/src/tether)
#   BENCH_RUNS  commands per contender (default 30, at most 500)
#   BENCH_JSON  also write the results there as JSON
set -euo pipefail

BENCH_NAME=exec_latency
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

root=$(cd "$(dirname "$0")/.." && pwd)
tether=$(realpath "${TETHER:-./build/src/tether}")
runs=${BENCH_RUNS:-30}
json_out=${BENCH_JSON:-}
if ! [[ $runs =~ ^[1-9][0-9]*$ ]] || ((runs > 500)); then die "BENCH_RUNS must be 1..500"; fi

work=$(mktemp -d /tmp/tether-bench-exec-XXXXXX)
master_pid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  TETHER_STATE_DIR=$work/state "$tether" down --all >/dev/null 2>&1 || true
  if [[ -n $master_pid ]]; then kill "$master_pid" 2>/dev/null || true; fi
  "$root/scripts/testbed.sh" stop "$work/sshd" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

"$root/scripts/testbed.sh" start "$work/sshd"
cfg=$work/sshd/ssh_config
export TETHER_STATE_DIR=$work/state

# OpenSSH's master, in the background (-N -f would leave it orphaned: keep its pid).
ssh -F "$cfg" -o ControlMaster=yes -o ControlPath="$work/cm.sock" -N testhost &
master_pid=$!
for _ in $(seq 100); do [[ -S $work/cm.sock ]] && break; sleep 0.1; done
[[ -S $work/cm.sock ]] || die "OpenSSH master did not start"
"$tether" -F "$cfg" up testhost >/dev/null 2>&1

# Milliseconds of one run of "$@".
time_ms() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}

declare -A samples
contenders=(tether_exec openssh_master tether_mux_stock_ssh openssh_fresh)
for ((i = 0; i < runs; i++)); do
  samples[tether_exec]+="$(time_ms "$tether" exec testhost true) "
  samples[openssh_master]+="$(time_ms ssh -F "$cfg" -o ControlPath="$work/cm.sock" testhost true) "
  samples[tether_mux_stock_ssh]+="$(time_ms ssh -F "$cfg" -o ControlMaster=no -o ControlPath="$TETHER_STATE_DIR/testhost.mux" testhost true) "
  if ((i < 10)); then
    samples[openssh_fresh]+="$(time_ms ssh -F "$cfg" -o ControlPath=none testhost true) "
  fi
done

stat() { # median p90 of the numbers in $1
  tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.9+0.999)]; print m, p}'
}
read -r base _ < <(stat "${samples[openssh_master]}")
echo "a command (true) over a shared connection, $runs runs each (fresh ssh: 10), $(ssh -V 2>&1)"
printf "%-22s %10s %10s %18s\n" contender "median ms" "p90 ms" "median / master"
json="{"
for c in "${contenders[@]}"; do
  read -r med p90 < <(stat "${samples[$c]}")
  ratio=$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  printf "%-22s %10s %10s %18s\n" "$c" "$med" "$p90" "$ratio"
  json+="\"$c\": {\"median_ms\": $med, \"p90_ms\": $p90, \"ratio_to_master\": $ratio}, "
done
json="${json%, }}"
[[ -n $json_out ]] && echo "$json" >"$json_out"
exit 0
