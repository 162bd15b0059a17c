#!/usr/bin/env bash
# The shell completions (completions/) in bash, zsh and fish: the same command lines, the
# same candidates. A private HOME whose ~/.ssh/config has hosts, a wildcard and an
# Include; a state directory with one daemon alive (its pid file locked, as a daemon holds
# it) and one stale pid file.
#
#   completion_test.sh TETHER COMPLETIONS_DIR
#
# zsh runs the completion function with compadd and _describe replaced by printing ones
# (outside a completion widget they do not exist); fish answers `complete -C` itself. File
# names, which each shell adds on its own where tether offers nothing, are left out.
# zsh and fish come from scripts/setup.sh.
set -euo pipefail
tether=$(realpath "$1")
dir=$(realpath "$2")
for shell in zsh fish; do
  command -v "$shell" >/dev/null || { echo "completion: $shell not found (scripts/setup.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/tether-completion-XXXXXX)
holder=""
cleanup() {
  [[ -n $holder ]] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export HOME=$work/home TETHER_STATE_DIR=$work/state
mkdir -p "$HOME/.ssh/conf.d" "$TETHER_STATE_DIR" "$work/bin"
chmod 700 "$TETHER_STATE_DIR"
cat >"$HOME/.ssh/config" <<'EOF'
Include conf.d/*
Host gpu
    HostName 10.0.0.5
Host *.internal !bastion
Host login jump
Host="quoted"
EOF
echo "Host extra" >"$HOME/.ssh/conf.d/more"
echo "Host other" >"$work/alt_config"
# A daemon holds an flock on its pid file for its whole life (daemon/state_dir.h).
echo $$ >"$TETHER_STATE_DIR/running1.pid"
echo 1 >"$TETHER_STATE_DIR/stale1.pid"
# One process holds it: the lock's descriptor stays open across its exec into sleep.
(
  exec 9<"$TETHER_STATE_DIR/running1.pid" >/dev/null 2>&1
  flock -x 9
  exec sleep 300
) &
holder=$!
for _ in $(seq 50); do
  flock -n -s "$TETHER_STATE_DIR/running1.pid" true || break
  sleep 0.1
done
# The command as typed: `tether`, found on PATH.
ln -s "$tether" "$work/bin/tether"
export PATH=$work/bin:$PATH

in_bash() {  # in_bash WORD...: the candidates for the last word, one a line
  bash --norc -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _tether
    printf "%s\n" "${COMPREPLY[@]}"' _ "$dir/tether.bash" "$@"
}
in_zsh() {
  zsh -f -c '
    file=$1; shift; words=("$@"); CURRENT=$#
    cur=${words[CURRENT]}
    compadd() {
      while [[ $1 == -* && $1 != -- ]]; do shift; done
      [[ $1 == -- ]] && shift
      local x; for x in "$@"; do [[ $x == ${cur}* ]] && print -r -- $x; done
    }
    _describe() {
      local x; for x in "${(@P)${@[-1]}}"; do x=${x%%:*}; [[ $x == ${cur}* ]] && print -r -- $x; done
    }
    _files() { :; }
    _default() { :; }
    source $file' _ "$dir/_tether" "$@"
}
in_fish() {
  # The line as typed: an empty last word is a line that ends in a space. File names (the
  # shell's own, past what tether offers) are left out, as _files and _default in zsh.
  local line
  line=$(printf '%q ' "${@:1:$#-1}")
  [[ -n ${*: -1} ]] && line+=$(printf '%q' "${*: -1}")
  fish --no-config -c "source $dir/tether.fish; function __fish_complete_path; end
    complete -C \$argv[1]" "$line" | cut -f1
}

failures=0
check() {  # check "EXPECTED..." WORD...: every shell offers exactly EXPECTED
  local want
  want=$(tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort)
  shift
  local shell got
  for shell in bash zsh fish; do
    got=$("in_$shell" "$@" | sed '/^$/d' | sort -u) || true
    if [[ $got != "$want" ]]; then
      echo "completion: $shell, '$*': got [$(echo $got)], want [$(echo $want)]" >&2
      failures=$((failures + 1))
    fi
  done
}

verbs="up forward env exec ssh run ssh-config doctor agent service login down status gpus ls logs"
check "$verbs" tether ""
check "-h --help --version -F -v" tether -
check "--proxy --proxy-open" tether up --pr
check "gpu login jump quoted extra running1" tether up ""
check "gpu" tether up -L 8000:localhost:8000 -i key g
check "other running1" tether -F "$work/alt_config" down ""
check "install" tether agent ""
check "install uninstall" tether service ""
check "--print" tether service install --p
check "--port" tether agent install --p
check "--socket" tether agent install --so
check "fish" tether env gpu --shell f
check "public private all" tether up gpu --laptop-network ""
check "--follow" tether logs --f
check "--help --install --uninstall" tether ssh-config --
check "" tether ls ""
check "" tether gpus ""
check "--free --help --json" tether gpus --
check "" tether exec gpu --not-an-option-here x
for f in "$dir/_tether"; do zsh -n "$f" || failures=$((failures + 1)); done
fish --no-execute "$dir/tether.fish" || failures=$((failures + 1))

if ((failures > 0)); then
  echo "completion: $failures failure(s)" >&2
  exit 1
fi
echo "completion: bash, zsh and fish agree on every case"
