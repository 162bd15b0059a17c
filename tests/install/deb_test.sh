#!/usr/bin/env bash
# The .deb that cpack makes from a build tree: its Depends name the libraries the binaries
# link, it holds the binaries, the man page and the three completions where they belong,
# and unpacked into a scratch directory its binaries run and its man page renders.
#
#   tests/install/deb_test.sh [BUILD_DIR]     (default build; scripts/test.sh runs it)
#
# Leaves nothing behind: the package and the unpacked tree live in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build}")
work=$(mktemp -d /tmp/tether-deb-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "deb: $*" >&2
  exit 1
}

# cpack -B: the package and cpack's staging tree go to the scratch directory, not the tree.
cpack --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
deb=$(find "$work/out" -maxdepth 1 -name 'tether_*.deb' | head -1)
[[ -n $deb ]] || fail "cpack made no tether_*.deb (see its output above)"

# dpkg-shlibdeps derives them; these are the ones tether cannot run without (tether-agent
# is static: it adds none).
depends=$(dpkg-deb -f "$deb" Depends)
names=$(sed 's/ *([^)]*)//g; s/, */\n/g' <<<"$depends")
for lib in libssh-4 libssl3 libstdc++6 libc6; do
  grep -qxF "$lib" <<<"$names" || fail "Depends lacks $lib: $depends"
done

contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
for f in ./usr/bin/tether ./usr/bin/tether-agent ./usr/share/man/man1/tether.1 \
  ./usr/share/bash-completion/completions/tether ./usr/share/zsh/site-functions/_tether \
  ./usr/share/zsh/vendor-completions/_tether \
  ./usr/share/fish/vendor_completions.d/tether.fish; do
  grep -qxF "$f" <<<"$contents" || fail "the package lacks $f"
done

dpkg-deb -x "$deb" "$work/root"
bin=$work/root/usr/bin
version=$(sed -nE 's/^project\(tether VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
[[ $("$bin/tether" --version) == "tether $version" ]] || fail "tether --version: $("$bin/tether" --version)"
[[ $("$bin/tether-agent" --version) == "tether-agent $version" ]] || fail "tether-agent --version"
"$bin/tether" --help | grep -q '^  up ' || fail "tether --help lists no 'up'"
"$bin/tether" __complete verbs | grep -q '^doctor' || fail "tether __complete verbs lists no doctor"
# The stripped binaries still link: ldd finds every library the Depends stand for.
if ldd "$bin/tether" "$bin/tether-agent" | grep -q 'not found'; then
  fail "a library is missing: $(ldd "$bin/tether" "$bin/tether-agent" | grep 'not found')"
fi
# Debian's zsh finds the packaged function in its own fpath.
if command -v zsh >/dev/null; then
  zsh -fc 'for d in $fpath; do [[ -f $1$d/_tether ]] && exit 0; done; exit 1' _ "$work/root" ||
    fail "no directory of zsh's fpath holds the packaged _tether"
fi
if command -v man >/dev/null; then
  page=$(MANWIDTH=80 man -l "$work/root/usr/share/man/man1/tether.1" 2>"$work/man.err" | cat)
  [[ -s $work/man.err ]] && fail "man -l warned: $(cat "$work/man.err")"
  grep -q '^EXIT STATUS' <<<"$page" || fail "the man page renders without EXIT STATUS"
fi

echo "deb: $(basename "$deb"), $(stat -c %s "$deb") bytes; Depends: $depends"
