#!/usr/bin/env bash
# What a connection through the server's proxy costs, the owner check included: one HTTP
# request at a time from the server through each contender to a web server on the
# laptop, against the same throwaway sshd in the same run.
#   tether_owner   tether up --proxy: the daemon asks the server whose process connected
#                  (forward/owner_check.h) before a byte moves
#   tether_open    tether up --proxy --proxy-open: the same proxy with no check
#   openssh_rsocks ssh -R PORT: OpenSSH's reverse SOCKS, which serves every account
# Times are curl's own (time_total: connect to the proxy until the last byte), so process
# start-up is not in them. Prints the median and the 90th percentile in ms, and the
# ratios to OpenSSH's.
#
# Environment:
#   TETHER      tether binary (default ./build/src/tether)
#   BENCH_RUNS  requests per contender (default 50, at most 1000)
#   BENCH_RTT_MS round trip added between the laptop and sshd (default 0) by the delay
#               line (build/tests/delay_relay, DELAY_RELAY). It ends TCP, which does not
#               matter here: what is measured is round trips, not windows
#   BENCH_JSON  also write the results there as JSON
set -euo pipefail

BENCH_NAME=proxy_connect
EXIT_TRIES=50
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

root=$(cd "$(dirname "$0")/.." && pwd)
tether=$(realpath "${TETHER:-./build/src/tether}")
runs=${BENCH_RUNS:-50}
json_out=${BENCH_JSON:-}
if ! [[ $runs =~ ^[1-9][0-9]*$ ]] || ((runs > 1000)); then die "BENCH_RUNS must be 1..1000"; fi

work=$(mktemp -d /tmp/tether-bench-proxy-XXXXXX)
pids=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  TETHER_STATE_DIR=$work/state "$tether" down --all >/dev/null 2>&1 || true
  TETHER_STATE_DIR=$work/state_open "$tether" down --all >/dev/null 2>&1 || true
  for p in "${pids[@]}"; do stop_pid "$p"; done
  "$root/scripts/testbed.sh" stop "$work/sshd" >/dev/null 2>&1 || true
  rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$root/scripts/testbed.sh" start "$work/sshd"
cfg=$work/sshd/ssh_config
rtt=${BENCH_RTT_MS:-0}
if ! [[ $rtt =~ ^[0-9]+$ ]] || ((rtt > 1000)); then die "BENCH_RTT_MS must be 0..1000"; fi
if ((rtt > 0)); then
  relay_bin=$(realpath "${DELAY_RELAY:-./build/tests/delay_relay}")
  sshd_port=$(awk '$1 == "Port" { print $2; exit }' "$cfg")
  relay_port=$(free_port)
  "$relay_bin" --listen "127.0.0.1:$relay_port" --connect "127.0.0.1:$sshd_port" \
    --delay-ms $((rtt / 2)) --quiet 2>"$work/relay.log" &
  pids+=($!)
  wait_until 50 grep -q "listening on" "$work/relay.log" || die "the delay line did not start"
  # The host key stays sshd's own, known under its real port.
  sed "s/^\( *\)Port .*/\1Port $relay_port\n\1HostKeyAlias [127.0.0.1]:$sshd_port/" "$cfg" \
    >"$work/ssh_config_delayed"
  cfg=$work/ssh_config_delayed
fi

mkdir "$work/www"
echo "through the laptop" >"$work/www/index.html"
web=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$work/www" "$web" >/dev/null 2>&1 &
pids+=($!)

owner=$(free_port)
TETHER_STATE_DIR=$work/state "$tether" -F "$cfg" up testhost --proxy="$owner" \
  --laptop-network=all >/dev/null 2>&1 || die "tether up --proxy failed"
open=$(free_port)
TETHER_STATE_DIR=$work/state_open "$tether" -F "$cfg" up testhost --proxy="$open" --proxy-open \
  --laptop-network=all >/dev/null 2>&1 || die "tether up --proxy --proxy-open failed"
rsocks=$(free_port)
ssh -F "$cfg" -o ControlPath=none -o ExitOnForwardFailure=yes -N -R "$rsocks" testhost &
pids+=($!)

fetch_ms() { # PROXY_PORT: one request's time in ms, or nothing when it failed
  local t
  t=$(curl -sS --noproxy '' --max-time 10 -o /dev/null -w '%{time_total}' \
    -x "socks5h://127.0.0.1:$1" "http://127.0.0.1:$web/" 2>/dev/null) || return 0
  awk -v t="$t" 'BEGIN { printf "%.2f\n", t * 1000 }'
}
ready() { [[ -n $(fetch_ms "$1") ]]; }
for port in "$owner" "$open" "$rsocks"; do
  wait_until 100 ready "$port" || die "no answer through port $port"
done

declare -A samples failures
contenders=(tether_owner tether_open openssh_rsocks)
declare -A port_of=([tether_owner]=$owner [tether_open]=$open [openssh_rsocks]=$rsocks)
for ((i = 0; i < runs; i++)); do
  for c in "${contenders[@]}"; do
    t=$(fetch_ms "${port_of[$c]}")
    if [[ -n $t ]]; then samples[$c]+="$t "; else failures[$c]=$((${failures[$c]:-0} + 1)); fi
  done
done

stat() { # median p90 of the numbers in $1
  tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g |
    awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.9+0.999)]; print m, p}'
}
read -r base _ < <(stat "${samples[openssh_rsocks]}")
echo "one request through the server's proxy (SOCKS5 to the laptop), $runs runs each, RTT +$rtt ms, $(ssh -V 2>&1)"
printf "%-16s %10s %10s %9s %20s\n" contender "median ms" "p90 ms" failed "median / OpenSSH"
json="{"
for c in "${contenders[@]}"; do
  read -r med p90 < <(stat "${samples[$c]}")
  ratio=$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  printf "%-16s %10s %10s %9s %20s\n" "$c" "$med" "$p90" "${failures[$c]:-0}" "$ratio"
  json+="\"$c\": {\"median_ms\": $med, \"p90_ms\": $p90, \"failed\": ${failures[$c]:-0}, \"ratio_to_openssh\": $ratio}, "
done
json="${json%, }}"
[[ -n $json_out ]] && echo "$json" >"$json_out"
exit 0
