#!/usr/bin/env bash
# Makes a Debian 11 "bullseye" root with its OpenSSH 8.4 sshd, once, into a cache outside
# the clone, and prints the path of a wrapper that acts as an sshd binary: it runs the
# root's /usr/sbin/sshd chrooted into the root, with the caller's arguments. The e2e tests
# run against it with TETHER_TEST_SSHD=$(scripts/debian11.sh); by default they use
# Debian 12's 9.2.
#
#   scripts/debian11.sh          build if needed; print ROOT/.tether/sshd
#
# Why a whole root and not only its sshd: what the tests run over ssh then runs on the
# server's own userland (glibc 2.31, bash 5.1, rsync 3.2.3), as on a real Debian 11 server.
#
# The wrapper gives sshd a mount namespace of its own (unshare --mount, private
# propagation) with the host's /tmp, /dev and /home bound into the root, a /proc of its
# own, and the host's /etc at /.tether/host-etc for the accounts and /etc/hosts (the root's
# passwd, group, shadow, gshadow and hosts link there), then execs chroot and sshd: the PID the test bed started is sshd's, the bed's sshd_config,
# keys and homes under /tmp have the same paths inside, and the mounts end with the last
# process of that namespace without ever showing in the host's. Tests tell this sshd
# apart by that path (testbed.h, SshdRoot()).
#
# debootstrap (variant minbase) from the mirror the machine's apt uses; installed here if
# missing. Idempotent: with the root in place a second run prints the path and does
# nothing else; a root made from another package list is made again. Needs root.
set -euo pipefail

readonly ROOT=${TETHER_DEBIAN11_ROOT:-/var/cache/tether/debian11-root}
readonly WRAPPER=$ROOT/.tether/sshd
readonly STAMP=$ROOT/.tether/made-with
readonly WANT_VERSION=OpenSSH_8.4
# What the tests run on the server side: sshd itself, rsync (rsync --server), curl (tether
# doctor's proxy check), python3 and git for the tests that use them; minbase has sh, bash,
# coreutils, tar, gzip.
readonly PACKAGES=openssh-server,rsync,curl,python3,git,procps
# What the stamp records: a root made with another package list or wrapper is made again.
readonly MADE_WITH="packages=$PACKAGES wrapper=3"

die() {
  echo "debian11.sh: $*" >&2
  exit 1
}

built() {
  [[ -x $WRAPPER && -x $ROOT/usr/sbin/sshd && -f $STAMP && $(cat "$STAMP") == "$MADE_WITH" ]] &&
    # (sshd 8.4 has no -V: it names its version in the usage it prints, and exits 1.)
    [[ $("$WRAPPER" -V 2>&1 || true) == *"$WANT_VERSION"* ]]
}

if built; then
  echo "$WRAPPER"
  exit 0
fi

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot, mount)"
command -v unshare >/dev/null || die "no unshare (util-linux)"

if ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
    >/dev/null || die "apt-get install debootstrap failed"
fi

# The same mirror host the machine's own bookworm lines use, so it is reachable here.
mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
  2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ' || true)
mirror=${mirror%/}
[[ -n $mirror ]] || mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-bullseye-stable.gpg
[[ -f $keyring ]] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg

# Made beside the cache and moved into place whole: an interrupted run leaves no half root
# that the next run would take for a finished one.
parent=$(dirname "$ROOT")
mkdir -p "$parent"
work=$(mktemp -d "$parent/.debian11-root.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT
# mktemp's 0700 would become the root's / and shut every account but root out of it.
chmod 0755 "$work"
if ! debootstrap --variant=minbase --include="$PACKAGES" --keyring="$keyring" \
  bullseye "$work" "$mirror" >"$work.log" 2>&1; then
  tail -30 "$work.log" >&2
  die "debootstrap bullseye from $mirror failed (log: $work.log)"
fi
rm -f "$work.log"
# debootstrap unmounts what it mounted; check, since rm -rf must never reach the host's /proc.
if grep -q " $work/" /proc/self/mounts; then die "debootstrap left mounts under $work"; fi

# Debian's sshd needs its privilege-separation directory; the bed makes the host's only.
mkdir -p "$work/run/sshd" "$work/.tether"
# The package's own host keys and config are not used (the bed brings its own).
rm -f "$work"/etc/ssh/ssh_host_*
# Accounts and names are the host's, through a bind of its /etc that the wrapper makes:
# tests make accounts (useradd) and name hosts (/etc/netns/NS/hosts) while sshd runs,
# and a symlink, unlike a bind of the file, follows useradd's rename of a new passwd.
mkdir -p "$work/.tether/host-etc"
for f in passwd group shadow gshadow hosts; do
  rm -f "$work/etc/$f"
  ln -s "/.tether/host-etc/$f" "$work/etc/$f"
done
# The root's path is written in, not found from $0: a test may start sshd through a link
# of another name.
{
  echo '#!/bin/bash'
  echo "# Written by tether's scripts/debian11.sh: runs the Debian 11 root's /usr/sbin/sshd"
  echo "# chrooted into it with the host's /tmp, /dev, /home and accounts, in a mount namespace of"
  echo "# its own."
  echo "# Every step execs, so the caller's PID is sshd's."
  printf 'root=%q\n' "$ROOT"
  cat <<'EOF'
exec unshare --mount --propagation private -- /bin/bash -c '
  root=$1
  shift
  mount --rbind /tmp "$root/tmp" && mount --rbind /dev "$root/dev" &&
    mount -t proc proc "$root/proc" && mount --rbind /etc "$root/.tether/host-etc" &&
    mount --rbind /home "$root/home" || exit 1
  exec chroot "$root" /usr/sbin/sshd "$@"' sshd-debian11 "$root" "$@"
EOF
} >"$work/.tether/sshd"
chmod 0755 "$work/.tether/sshd"
echo "$MADE_WITH" >"$work/.tether/made-with"

if [[ -e $ROOT ]]; then
  grep -q " $ROOT/" /proc/self/mounts && die "something is mounted under $ROOT; not replacing it"
  rm -rf --one-file-system "$ROOT"
fi
mv "$work" "$ROOT"
trap - EXIT
built || die "made $ROOT but $WRAPPER does not run an OpenSSH 8.4 sshd"
echo "$WRAPPER"
