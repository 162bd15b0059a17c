#!/usr/bin/env bash
# Configures and builds tether into build/ (or $BUILD_DIR), two jobs (the machine's size).
# Warnings are errors here (TETHER_WERROR, off by default for other builds).
# Extra arguments go to cmake's configure step, e.g. -DTETHER_SANITIZE=ON.
# Objects are cached by ccache outside the tree (~/.cache/ccache, or $CCACHE_DIR), keyed
# on paths relative to this checkout, so a fresh clone in another folder reuses them.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTETHER_WERROR=ON "$@" >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}"
