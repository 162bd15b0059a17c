#!/usr/bin/env bash
# The demo: a throwaway sshd on a free loopback port, a small HTTP server behind it,
# and tether doing its main job: up with a forward, a fetch through it, a command over
# the same connection (tether exec, and stock ssh through the ControlPath socket), a
# remote forward added at runtime, the server's proxy through the laptop (its owner's
# alone), status, doctor, down.
# Everything it makes is removed at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/src/tether ]] || scripts/build.sh
tether=$PWD/build/src/tether

work=$(mktemp -d /tmp/tether-demo-XXXXXX)
export TETHER_STATE_DIR=$work/state
http_pid=""
cleanup() {
  "$tether" down --all >/dev/null 2>&1 || true
  [[ -n $http_pid ]] && kill "$http_pid" 2>/dev/null && wait "$http_pid" 2>/dev/null || true
  scripts/testbed.sh stop "$work/sshd" || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== a throwaway sshd (its own host key, user key, ssh_config and known_hosts)"
# The server's HOME is the demo's (the runner of --fast-exec is copied there), not root's.
mkdir -m 700 "$work/home"
TESTBED_SSHD_EXTRA="SetEnv HOME=$work/home" scripts/testbed.sh start "$work/sshd"
cfg=$work/sshd/ssh_config
echo "   sshd on 127.0.0.1:$(cat "$work/sshd/port"), config $cfg"

echo "== an HTTP server on the 'server' side, 127.0.0.1 only"
mkdir -p "$work/www/v1"
echo '{"object":"list","data":[{"id":"demo-model"}]}' >"$work/www/v1/models"
http_port=$(free_port)
python3 -m http.server "$http_port" --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
http_pid=$!
for _ in $(seq 50); do curl -s "http://127.0.0.1:$http_port/" >/dev/null && break; sleep 0.1; done

local_port=$(free_port)
echo
echo "\$ tether -F $cfg up demo -L $local_port:127.0.0.1:$http_port"
"$tether" -F "$cfg" up demo -L "$local_port:127.0.0.1:$http_port"
echo
echo "\$ curl http://127.0.0.1:$local_port/v1/models"
curl -sS --max-time 10 "http://127.0.0.1:$local_port/v1/models"
echo
echo "\$ tether exec demo -- 'uname -s; echo \$((6*7))'      # over the same connection"
"$tether" exec demo -- 'uname -s; echo $((6*7))'
echo
echo "\$ ssh -o ControlPath=\$(state)/demo.mux demo hostname    # stock ssh rides it too"
ssh -F "$cfg" -o ControlMaster=no -o ControlPath="$TETHER_STATE_DIR/demo.mux" demo 'echo "stock ssh through tether: $(whoami)@$(hostname)"'
echo
echo "\$ tether ssh-config --install && ssh demo ...   # or for good: one Include atop the config"
"$tether" -F "$cfg" ssh-config --install
ssh -F "$cfg" demo 'echo "plain ssh, no options, through tether: $(whoami)@$(hostname)"'
"$tether" -F "$cfg" ssh-config --uninstall
echo
echo "\$ seq 20 | xargs -P 10 -I{} tether exec demo -- 'echo {}' | sort -n | tr '\\n' ' '"
echo "                     # an agent's burst: 10 at once, stdin /dev/null (xargs gives it)"
seq 20 | xargs -P 10 -I{} "$tether" exec demo -- 'echo {}' | sort -n | tr '\n' ' '
echo
echo
echo "\$ echo '{\"cmd\":\"forward\",\"kind\":1}' | (the daemon's control socket)   # bad input: an answer, no crash"
python3 - "$TETHER_STATE_DIR/demo.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"forward","kind":1}\n')
print(s.makefile().readline().strip())
PY
echo
rport=$(free_port)
echo "\$ tether forward demo -R $rport:127.0.0.1:$http_port       # the laptop's port on the server"
"$tether" forward demo -R "$rport:127.0.0.1:$http_port"
echo
proxy_port=$(free_port)
echo "\$ tether up demo --proxy=$proxy_port                  # internet for the server, through the laptop"
"$tether" -F "$cfg" up demo --proxy="$proxy_port"
echo
echo "\$ tether run demo -- curl -sS -x \"\$http_proxy\" --noproxy '' http://127.0.0.1:$http_port/v1/models"
echo "                     # the laptop's own loopback is closed to the server: 403"
"$tether" run demo -- curl -sS --max-time 10 -o /dev/null -w "'%{http_code}\n'" -x '"$http_proxy"' --noproxy "''" "http://127.0.0.1:$http_port/v1/models"
echo
echo "\$ tether down demo && tether up demo --proxy=$proxy_port --laptop-network=all   # opened on purpose"
"$tether" down demo >/dev/null
"$tether" -F "$cfg" up demo --proxy="$proxy_port" --laptop-network=all -L "$local_port:127.0.0.1:$http_port"
echo
echo "\$ tether run demo -- curl -sS -x \"\$http_proxy\" --noproxy '' http://127.0.0.1:$http_port/v1/models"
"$tether" run demo -- curl -sS --max-time 10 -x '"$http_proxy"' --noproxy "''" "http://127.0.0.1:$http_port/v1/models"
echo
echo "\$ tether env demo          # the proxy knows its owner by uid on the server: no token in the URLs"
"$tether" env demo | grep -E '^export (http_proxy|ALL_PROXY)='
echo
echo "\$ setpriv --reuid=nobody ... curl -x http://127.0.0.1:$proxy_port ...   # another account on the server"
if setpriv --reuid=65534 --regid=65534 --clear-groups -- /usr/bin/curl -sS --max-time 10 \
  -x "http://127.0.0.1:$proxy_port" --noproxy '' "http://127.0.0.1:$http_port/v1/models" 2>&1; then
  echo "served: the owner check failed" >&2
  exit 1
fi
echo "(refused: the daemon's log names the uid)"
echo
echo "\$ tether down demo && tether up demo --fast-exec ...   # commands without a session's start each"
"$tether" down demo >/dev/null
"$tether" -F "$cfg" up demo --fast-exec --proxy="$proxy_port" --laptop-network=all -L "$local_port:127.0.0.1:$http_port"
for _ in $(seq 100); do
  "$tether" status --json | grep -q '"state": *"ready"' && break
  sleep 0.1
done
echo "\$ for i in 1 2 3 4 5; do time tether exec demo true; done   # through the resident runner"
for _ in 1 2 3 4 5; do
  start=$(date +%s%N)
  "$tether" exec demo true
  echo "  $((($(date +%s%N) - start) / 1000000)) ms"
done
echo
echo "\$ tether status"
"$tether" status
echo
echo "\$ tether doctor demo --probe http://127.0.0.1:$http_port/    # the troubleshooting checklist"
"$tether" -F "$cfg" doctor demo --probe "http://127.0.0.1:$http_port/"
echo
echo "\$ tether status --json"
"$tether" status --json
echo
echo "\$ tether down demo"
"$tether" down demo
echo
left=$(ls -A "$TETHER_STATE_DIR" | grep -v '\.log$' || true)
[[ -z $left ]] && echo "nothing left behind in the state directory" || { echo "left: $left"; exit 1; }
