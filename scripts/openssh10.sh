#!/usr/bin/env bash
# Builds OpenSSH 10.0's sshd from Debian 13 "trixie"'s source package, once, into a cache
# outside the clone, and prints the path of the sshd binary. The e2e tests run against it
# with TETHER_TEST_SSHD=$(scripts/openssh10.sh); by default they use Debian 12's 9.2.
#
#   scripts/openssh10.sh          build if needed; print CACHE/install/sbin/sshd
#
# Why 10.0: PerSourcePenalties (on by default since 9.8) penalises addresses whose
# connections close without authenticating, and 10.0 splits sshd into sshd + sshd-session
# + sshd-auth. A second server catches what only one of them shows.
#
# Only sshd, sshd-session and sshd-auth are built (./configure + make), with bookworm's
# build dependencies: no dpkg-buildpackage, no Debian patches beyond what the source has.
# --prefix points inside the cache, so the compiled-in libexec path finds sshd-session.
# Idempotent: a second run with the cache in place prints the path and does nothing else.
# Needs root (apt).
set -euo pipefail

readonly CACHE=${TETHER_OPENSSH10_CACHE:-/var/cache/tether/openssh-10.0}
readonly PREFIX=$CACHE/install
readonly SSHD=$PREFIX/sbin/sshd
readonly SOURCES=/etc/apt/sources.list.d/tether-trixie-src.sources
readonly WANT_VERSION=OpenSSH_10.

die() {
  echo "openssh10.sh: $*" >&2
  exit 1
}

built() {
  [[ -x $SSHD && -x $PREFIX/libexec/sshd-session && -x $PREFIX/libexec/sshd-auth ]] &&
    "$SSHD" -V 2>&1 | grep -q "$WANT_VERSION"
}

if built; then
  echo "$SSHD"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi

# The same mirror host the machine's own bookworm lines use, so it is reachable here.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
  2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
mirror=${mirror%/}
[[ -n $mirror ]] || mirror=http://deb.debian.org/debian

if [[ ! -f $SOURCES ]]; then
  # deb-src only: nothing from trixie can be installed by accident.
  $sudo tee "$SOURCES" >/dev/null <<EOF
# Written by tether's scripts/openssh10.sh: OpenSSH 10.0 source for a second test sshd.
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

# autoconf: Debian's patches touch configure.ac, so configure is made anew.
build_deps=(build-essential dpkg-dev autoconf libssl-dev zlib1g-dev)
missing=()
for p in "${build_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
$sudo apt-get update -qq
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

$sudo mkdir -p "$CACHE"
cd "$CACHE"
src=$(find . -maxdepth 1 -type d -name 'openssh-10.*' | head -1)
if [[ -z $src ]]; then
  # Unsigned is fine: apt verified the Sources index, and dpkg-source checks the hashes.
  apt-get source -qq -o APT::Sandbox::User=root --download-only openssh/trixie >/dev/null || die "apt-get source openssh failed"
  dsc=$(ls openssh_10.*.dsc 2>/dev/null | head -1)
  [[ -n $dsc ]] || die "no openssh 10 source package in trixie (got: $(ls))"
  dpkg-source --no-check -x "$dsc" >/dev/null
  src=$(find . -maxdepth 1 -type d -name 'openssh-10.*' | head -1)
  [[ -n $src ]] || die "unpacking $dsc gave no openssh-10.* folder"
fi
cd "$src"

jobs=${JOBS:-2}
if [[ ! -f Makefile ]]; then
  # (aclocal.m4 ships in the tarball: autoconf and autoheader are enough, no automake.)
  [[ configure -nt configure.ac ]] || { autoconf && autoheader; } >/dev/null 2>&1 || die "autoconf failed"
  # PAM off: the tests log in by key only, and sshd's PAM config would be the machine's.
  ./configure -q --prefix="$PREFIX" --sysconfdir="$PREFIX/etc" \
    --with-privsep-path=/run/sshd --without-pam >/dev/null || die "configure failed"
fi
make -s -j "$jobs" sshd sshd-session sshd-auth >/dev/null 2>build.err || {
  tail -30 build.err >&2
  die "make failed"
}
mkdir -p "$PREFIX/sbin" "$PREFIX/libexec" "$PREFIX/etc"
install -m 0755 sshd "$PREFIX/sbin/sshd"
install -m 0755 sshd-session "$PREFIX/libexec/sshd-session"
install -m 0755 sshd-auth "$PREFIX/libexec/sshd-auth"
built || die "built $SSHD but it does not run or is not 10.x"
echo "$SSHD"
