#!/usr/bin/env bash
# Configures and builds tether into build/ (or $BUILD_DIR), two jobs (the machine's size).
# Extra arguments go to cmake's configure step, e.g. -DTETHER_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}"
