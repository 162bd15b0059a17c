#!/usr/bin/env bash
# Installs every Debian package tether's build, tests, demo and benchmarks use.
# Idempotent: runs apt-get only when something is missing. Needs root (or sudo).
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config g++
  libssh-dev libssl-dev libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev
  libtomlplusplus-dev libgtest-dev libgmock-dev libbenchmark-dev
  # tests, demo and benchmarks: a real sshd and real clients
  openssh-server openssh-client iperf3 curl python3 iproute2 iptables autossh procps tmux
  tinyproxy rsync git
  libpam-oath oathtool  # a one-time-code second factor for the login tests (PAM's pam_oath)
  zsh fish  # the shell completions' test (tests/install/completion_test.sh)
  libnetfilter-queue-dev  # the test bed's IP-layer delay line (tests/tools/nfq_delay.cc)
  # code style
  clang-format
  # fuzzing: libFuzzer comes with clang's runtime libraries (scripts/fuzz.sh)
  clang libclang-rt-14-dev
  # build cache: a fresh clone on the same machine reuses objects (scripts/build.sh)
  ccache
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
