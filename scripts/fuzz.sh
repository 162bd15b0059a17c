#!/usr/bin/env bash
# Builds every fuzz target with clang's libFuzzer (ASan + UBSan) into build-fuzz/ (or
# $FUZZ_BUILD_DIR) and runs each for a bounded time, starting from its checked-in corpus
# (tests/fuzz/corpus/<target>/). New inputs go to build-fuzz/corpus/<target>/, crashes to
# build-fuzz/crashes/; copy the interesting ones into the checked-in corpus by hand.
#
#   scripts/fuzz.sh                 every target, $FUZZ_SECONDS (30) seconds each
#   scripts/fuzz.sh mux_server 300  one target, five minutes
#
# Exits non-zero when a target crashed or broke one of its checks. The gcc build replays
# the same corpora without clang: ctest --test-dir build -L fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
# Absolute: a target may change its working directory while it runs.
build_dir=$(realpath -m "${FUZZ_BUILD_DIR:-build-fuzz}")
seconds=${FUZZ_SECONDS:-30}
targets=(control_line forward_spec forwards_record http_proxy http_request mux_codec mux_server nvidia_smi proxy_handshake
  socks ssh_config upstream)
if (($# >= 1)); then targets=("$1"); fi
if (($# >= 2)); then seconds=$2; fi

clangxx=$(command -v clang++ || command -v clang++-14 || true)
if [[ -z $clangxx ]]; then
  echo "fuzz: clang++ not found (scripts/setup.sh installs it)" >&2
  exit 2
fi
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
# -Werror stays the gcc build's gate: clang's extra warnings must not stop a fuzz run.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$clangxx" \
  -DTETHER_FUZZ_ENGINE=libfuzzer -DTETHER_WERROR=OFF >/dev/null
cmake --build "$build_dir" -j "${JOBS:-2}" --target "${targets[@]/%/_fuzz}"

mkdir -p "$build_dir/crashes"
failed=()
for t in "${targets[@]}"; do
  out="$build_dir/corpus/$t"
  mkdir -p "$out"
  echo "fuzz: $t for ${seconds}s"
  # -timeout: one input taking over 10 s is a hang, reported like a crash.
  if ! "$build_dir/tests/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build_dir/crashes/$t-" -print_final_stats=1 \
    "$out" "$PWD/tests/fuzz/corpus/$t" >"$build_dir/$t.log" 2>&1; then
    echo "fuzz: $t FAILED (see $build_dir/$t.log and $build_dir/crashes/)" >&2
    tail -30 "$build_dir/$t.log" >&2
    failed+=("$t")
  else
    grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$build_dir/$t.log" |
      sed "s/^/fuzz: $t /" || true
  fi
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no failure"
