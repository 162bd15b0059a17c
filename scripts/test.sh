#!/usr/bin/env bash
# Builds and runs every test: unit tests, then end-to-end tests against a real sshd,
# then the unit tests and the fast end-to-end tests again under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build"
scripts/build.sh
echo "== tests"
ctest --test-dir build --output-on-failure --timeout 600

if [[ "${TETHER_SKIP_SANITIZE:-0}" != 1 ]]; then
  echo "== sanitizer build (ASan + UBSan)"
  BUILD_DIR=build-asan scripts/build.sh -DTETHER_SANITIZE=ON
  echo "== tests under ASan + UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure --timeout 600 -E Slow
fi
