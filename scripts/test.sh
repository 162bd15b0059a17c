#!/usr/bin/env bash
# Builds and runs tether's tests. Three tiers (docs/testing.md says what is in each):
#
#   scripts/test.sh           what CI runs (.ci/run): the unit tests and every end-to-end
#                             test against a real sshd, then the unit tests and the fast
#                             end-to-end tests again under ASan + UBSan, then the smoke set
#                             against OpenSSH 8.4 (a Debian 11 root) and 10.0. Before you push.
#   scripts/test.sh --quick   the inner loop: the unit tests and a smoke set of end-to-end
#                             tests, normal build only. A few minutes after a change.
#   scripts/test.sh --all     CI's tiers, then what is too slow for every push: the full
#                             2000-command soak, the slow end-to-end tests under the
#                             sanitizers, the fuzz targets for a bounded time each (clang,
#                             libFuzzer), and the end-to-end suite against OpenSSH 10.0.
#
# Environment: TEST_JOBS (tests run side by side, default 4: most of an end-to-end test is
# waiting on sshd and the network), JOBS (compile jobs, default 2), TETHER_SKIP_SANITIZE=1.
# Objects come from ccache (scripts/build.sh), so a fresh clone on a machine that built
# before compiles little.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=ci
case "${1:-}" in
  "") ;;
  --quick) mode=quick ;;
  --all) mode=all ;;
  -h | --help)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "test.sh: unknown argument '$1' (use --quick, --all or nothing)" >&2
    exit 2
    ;;
esac
test_jobs=${TEST_JOBS:-4}

# A smoke set for --quick: one test or two from each area, a minute on two cores.
smoke='^(ConnectTest\.(UnknownHostKeyIsRefused|AcceptNewAddsAnUnknownKey|WrongKeyIsAnAuthError)'
smoke+='|LocalForwardTest\.(DownloadArrivesByteIdentical|RefusedTargetCloses)'
smoke+='|RemoteForwardTest\.MovesDataByteIdenticalBothWays'
smoke+='|ExecTest\.(ExitCodesAndSignalsPassThrough|StockSshScpAndRsyncRideTheConnection|GarbageOnTheMuxSocket)'
smoke+='|ProxyTest\.DynamicForwardSpeaks'
smoke+='|LifecycleTest\.(DownLeavesNoProcessAndNoFile|GarbageOnTheControlSocket|KilledDaemonIsNoticed)'
smoke+='|SelfHealingTest\.ReconnectsWhenTheServerDropsTheConnection'
smoke+='|JumpTest\.ReachesTheTargetThroughProxyJump'
smoke+='|DoctorTest\.AHealthyHostPassesEveryCheck)'

timings=()
stage() {  # stage NAME COMMAND...: runs it, prints and remembers how long it took
  local name=$1
  shift
  local start=$SECONDS
  echo "== $name"
  "$@"
  local took=$((SECONDS - start))
  timings+=("$(printf '%-34s %4d s' "$name" "$took")")
  echo "== $name: ${took} s"
}
summary() {
  echo "== stage times"
  printf '   %s\n' "${timings[@]}"
}
trap summary EXIT

run_ctest() {  # run_ctest BUILD_DIR CTEST_ARGS...
  local dir=$1
  shift
  ctest --test-dir "$dir" --output-on-failure --timeout 600 -j "$test_jobs" "$@"
}

sanitized() {  # sanitized COMMAND...: with ASan and UBSan failing at the first report
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$@"
}

stage "build" scripts/build.sh

if [[ $mode == quick ]]; then
  stage "unit tests" run_ctest build -L unit
  stage "end-to-end smoke set" run_ctest build -R "$smoke"
  exit 0
fi

# CI runs the soak with 500 commands (a minute; the server's shell rc is most of it);
# --all runs the full 2000.
if [[ $mode == ci ]]; then export TETHER_SOAK_COMMANDS=${TETHER_SOAK_COMMANDS:-500}; fi
stage "unit and end-to-end tests" run_ctest build
# The .deb of that tree (cpack): its Depends and files, and its binaries and man page
# unpacked and run.
stage "package (.deb)" tests/install/deb_test.sh build

# The sanitizer tree builds tether, tether-agent, the unit tests and the fuzz replays; its
# end-to-end run is the normal tree's test binary driving the sanitizer build's tether
# (TETHER_E2E_BIN): the daemon under test is what the sanitizers watch.
sanitized_e2e() {  # sanitized_e2e CTEST_ARGS...
  TETHER_E2E_BIN="$PWD/build-asan/src/tether" sanitized run_ctest build -L e2e "$@"
}
if [[ "${TETHER_SKIP_SANITIZE:-0}" != 1 ]]; then
  stage "sanitizer build (ASan + UBSan)" \
    env BUILD_DIR=build-asan scripts/build.sh -DTETHER_SANITIZE=ON -DTETHER_E2E_TESTS=OFF
  # The slow tier is left out here: under the sanitizers each byte costs several times
  # more CPU, and the slow tests' bounds are about time (--all runs them).
  stage "unit tests under ASan + UBSan" sanitized run_ctest build-asan -E Slow
  stage "end-to-end tests under ASan + UBSan" sanitized_e2e -E Slow
fi

# The interop matrix's other columns (docs/testing.md): the smoke set against OpenSSH 8.4
# in a Debian 11 root (what runs over ssh runs on its glibc 2.31 and bash 5.1) and against
# OpenSSH 10.0. Both servers are made once and cached outside the tree; one that cannot be
# made fails the stage, it is not skipped.
interop_smoke() {
  local sshd84 sshd10
  if ! sshd84=$(scripts/debian11.sh); then
    echo "test.sh: no Debian 11 root with OpenSSH 8.4 (scripts/debian11.sh failed, above)" >&2
    return 1
  fi
  if ! sshd10=$(scripts/openssh10.sh); then
    echo "test.sh: no OpenSSH 10.0 (scripts/openssh10.sh failed, above)" >&2
    return 1
  fi
  echo "-- OpenSSH 8.4 (Debian 11 root): $sshd84"
  TETHER_TEST_SSHD=$sshd84 run_ctest build -R "$smoke|^InteropTest\."
  echo "-- OpenSSH 10.0: $sshd10"
  TETHER_TEST_SSHD=$sshd10 run_ctest build -R "$smoke"
}
stage "end-to-end smoke set against OpenSSH 8.4 and 10.0" interop_smoke

if [[ $mode == all ]]; then
  if [[ "${TETHER_SKIP_SANITIZE:-0}" != 1 ]]; then
    stage "slow tests under ASan + UBSan" sanitized_e2e -R Slow
  fi
  stage "fuzz targets (libFuzzer, bounded)" scripts/fuzz.sh
  # The end-to-end suite against OpenSSH 10.0 (PerSourcePenalties on, sshd-session),
  # built once from Debian 13's source package and cached outside the tree.
  sshd10=$(scripts/openssh10.sh)
  stage "end-to-end tests against OpenSSH 10.0" env TETHER_TEST_SSHD="$sshd10" \
    ctest --test-dir build --output-on-failure --timeout 600 -j "$test_jobs" -L e2e -LE soak
fi
