#!/usr/bin/env python3
"""Throughput over long links: tether against OpenSSH over one end-to-end TCP connection.

  bench/long_link.py [--rtts 0,50,100,200] [--modes L,scp,rsync,cat] [--directions down,up]
                     [--seconds 20] [--size-mib 256[,RTT:MiB...]] [--up-size-mib ...]
                     [--repeat N] [--json FILE] [--keep [-v]]

Two network namespaces, "laptop" and "server", joined by a veth pair 10.233.252.1/30 <-> .2
that exists only inside them, TCP buffer maximums raised to 128 MiB inside both. The delay
is added at the IP layer, as a long path adds it: build/tests/nfq_delay holds every packet
arriving on each end of the veth for RTT/2 (an NFQUEUE rule in raw PREROUTING), so the
laptop's TCP and sshd's TCP share one connection that spans the whole round trip, and its
window, RTT estimate and congestion control all see the delay. (The older bench put a relay
in front of sshd that ended TCP on each side; it drained sshd at local speed and hid how
sshd behaves when a real link is the bottleneck.) Before each RTT's runs a probe checks the
delay: the median time of five TCP connects from the laptop to the server (one round trip).

An OpenSSH sshd runs in the server namespace. For each RTT and direction, in one run:
  L      -L forwarding, iperf3 for --seconds (2 more omitted): `ssh -N -L` against
         `tether up -L`, with plain TCP through the same link as the link's own limit
  scp    a --size-mib file: scp on its own connection against scp through tether's HOST.mux
         (OpenSSH 9's scp copies over SFTP; scp-O: the same with -O, the legacy protocol)
  rsync  the same with rsync (-e ssh), on its own connection against through HOST.mux
  cat    `ssh HOST cat FILE` against `tether exec HOST cat FILE` (and cat > FILE up)
  stripe the file cut in N parts, moved by N `tether exec cat` at once, N session channels
         of the one connection (N = 1, 2, 4, 8; against the N = 1 run): what striping gains
         where sshd's own 2 MiB window per channel bounds an upload
Each copy is checked byte-identical. down = server to laptop, up = laptop to server.

CPU: sshd and its session processes run in one cpuacct cgroup, the laptop side (ssh, scp,
rsync, the tether daemon and its clients) in another; each run reports both sides' CPU
seconds per GB moved, exited processes included. iperf3 and the delay lines are in neither.

Everything shares the machine's cores: the ratio (same run, same link) is the figure to read.
The targets of the long-link work are printed, not asserted. Needs root; every process it
starts is ended by PID, and the namespaces and cgroups are removed on exit.
"""
import argparse
import hashlib
import json
import math
import os
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

NAME = "long_link"
NS_PREFIX = "tll-"
LAPTOP_IP = "10.233.252.1"
SERVER_IP = "10.233.252.2"
IPERF_PORT = 5201
OSSH_PORT = 15201
TETHER_PORT = 15202
TCP_MAX = 128 << 20
CGROUP_ROOT = "/sys/fs/cgroup/cpuacct"
# scp (OpenSSH 9) copies over SFTP: the server needs the subsystem, as every real one has.
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
QUEUE = 7
EXIT_WAIT = 3.0  # s a process gets after SIGTERM
CMD_TIMEOUT = 30


def note(msg):
    print(f"{NAME}: {msg}", file=sys.stderr, flush=True)


def die(msg):
    note(msg)
    sys.exit(1)


def run(args, timeout=CMD_TIMEOUT, check=True, **kw):
    r = subprocess.run(args, timeout=timeout, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-400:]}")
    return r


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(proc):
    """Ends a Popen by its PID: SIGTERM, a bounded wait, SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(EXIT_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(EXIT_WAIT)


class Cgroup:
    """A cpuacct cgroup: processes started in it (and their children) add to usage()."""

    def __init__(self, name):
        self.path = os.path.join(CGROUP_ROOT, name)
        os.makedirs(self.path, exist_ok=True)

    def join(self):  # in a child, before exec
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def usage(self):
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read()) / 1e9

    def remove(self):
        for _ in range(50):
            try:
                with open(os.path.join(self.path, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)
        note(f"could not remove cgroup {self.path}")


class Bed:
    def __init__(self, args):
        self.args = args
        self.pid = os.getpid()
        self.laptop = f"{NS_PREFIX}{self.pid}-laptop"
        self.server = f"{NS_PREFIX}{self.pid}-server"
        self.made_ns = []
        self.procs = []
        self.lines = []
        # Files in memory: a disk must not be what is measured.
        self.work = tempfile.mkdtemp(prefix="tether-bench-ll-", dir="/dev/shm")
        os.chmod(self.work, 0o700)
        self.state = os.path.join(self.work, "state")
        os.mkdir(self.state, 0o700)
        self.sshd_cg = Cgroup(f"{NS_PREFIX}{self.pid}-sshd")
        self.client_cg = Cgroup(f"{NS_PREFIX}{self.pid}-client")
        self.tether_up = False

    # -- processes ----------------------------------------------------------------------

    def popen(self, ns, args, cgroup=None, env=None, **kw):
        pre = cgroup.join if cgroup else None
        p = subprocess.Popen(["ip", "netns", "exec", ns] + args, preexec_fn=pre, env=env,
                             stdin=subprocess.DEVNULL, **kw)
        self.procs.append(p)
        return p

    def in_ns(self, ns, args, cgroup=None, timeout=CMD_TIMEOUT, env=None, stdin=None,
              stdout=None):
        """Runs ARGS inside NS to its end (bounded); returns (rc, seconds, stderr)."""
        pre = cgroup.join if cgroup else None
        start = time.monotonic()
        p = subprocess.Popen(["ip", "netns", "exec", ns] + args, preexec_fn=pre, env=env,
                             stdin=stdin if stdin is not None else subprocess.DEVNULL,
                             stdout=stdout if stdout is not None else subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        try:
            _, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(p)
            return -1, time.monotonic() - start, "timed out"
        return p.returncode, time.monotonic() - start, err

    def tether(self, args, timeout=CMD_TIMEOUT, **kw):
        env = dict(os.environ, TETHER_STATE_DIR=self.state)
        return self.in_ns(self.laptop, [self.args.tether, "-F", self.ssh_config] + args,
                          cgroup=self.client_cg, timeout=timeout, env=env, **kw)

    # -- the network ----------------------------------------------------------------------

    def remove_stale(self):
        out = run(["ip", "netns", "list"], check=False).stdout
        for line in out.splitlines():
            m = re.match(rf"^{NS_PREFIX}(\d+)-(laptop|server)\b", line)
            if m and int(m.group(1)) != self.pid and not alive(int(m.group(1))):
                note(f"removing {m.group(0)}, left over by an earlier run")
                self.kill_ns(m.group(0))
                run(["ip", "netns", "del", m.group(0)], check=False)

    def kill_ns(self, ns):
        for _ in range(3):
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(int(p), signal.SIGTERM)
                except OSError:
                    pass
            time.sleep(0.5)
            for p in pids:
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass

    def make_network(self):
        self.remove_stale()
        for ns in (self.laptop, self.server):
            run(["ip", "netns", "add", ns])
            self.made_ns.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            # Per namespace: with the default 4-6 MiB maximums one stream would stop at the
            # socket buffer, and that is what we would measure.
            run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                 f"net.ipv4.tcp_rmem=4096 131072 {TCP_MAX}",
                 f"net.ipv4.tcp_wmem=4096 16384 {TCP_MAX}"])
            run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"net.core.rmem_max={TCP_MAX}",
                 f"net.core.wmem_max={TCP_MAX}"], check=False)
        run(["ip", "-n", self.laptop, "link", "add", "tlw0", "type", "veth", "peer", "name",
             "tlw1", "netns", self.server])
        run(["ip", "-n", self.laptop, "addr", "add", f"{LAPTOP_IP}/30", "dev", "tlw0"])
        run(["ip", "-n", self.server, "addr", "add", f"{SERVER_IP}/30", "dev", "tlw1"])
        run(["ip", "-n", self.laptop, "link", "set", "tlw0", "up"])
        run(["ip", "-n", self.server, "link", "set", "tlw1", "up"])

    def set_delay(self, rtt_ms):
        """Replaces the delay lines: RTT/2 on arrival at each end, or none for 0."""
        self.clear_delay()
        if rtt_ms == 0:
            return
        half = rtt_ms / 2
        for ns, dev in ((self.laptop, "tlw0"), (self.server, "tlw1")):
            log = open(os.path.join(self.work, f"nfq-{ns}-{rtt_ms}.log"), "w")
            p = self.popen(ns, [self.args.nfq_delay, "--queue", str(QUEUE), "--delay-ms",
                                f"{half:g}"], stderr=log, stdout=log)
            deadline = time.monotonic() + 10
            path = log.name
            while time.monotonic() < deadline:
                with open(path) as f:
                    if "nfq_delay: ready" in f.read():
                        break
                if p.poll() is not None:
                    break
                time.sleep(0.05)
            else:
                die(f"nfq_delay in {ns} did not start")
            if p.poll() is not None:
                die(f"nfq_delay in {ns} exited: {open(path).read()[-300:]}")
            run(["ip", "netns", "exec", ns, "iptables", "-t", "raw", "-A", "PREROUTING", "-i",
                 dev, "-j", "NFQUEUE", "--queue-num", str(QUEUE)])
            self.lines.append((ns, dev, p))

    def clear_delay(self):
        for ns, dev, p in self.lines:
            run(["ip", "netns", "exec", ns, "iptables", "-t", "raw", "-D", "PREROUTING", "-i",
                 dev, "-j", "NFQUEUE", "--queue-num", str(QUEUE)], check=False)
            stop(p)
        self.lines = []

    def probe_rtt(self):
        """Median of five TCP connects laptop -> server's sshd, in ms (one round trip)."""
        code = ("import socket,time,statistics\n"
                "t=[]\n"
                "for i in range(5):\n"
                " s=socket.socket(); a=time.monotonic()\n"
                f" s.connect(('{SERVER_IP}',22)); t.append((time.monotonic()-a)*1000); s.close()\n"
                "print('%.1f' % statistics.median(t))\n")
        r = run(["ip", "netns", "exec", self.laptop, sys.executable, "-c", code], timeout=30)
        return float(r.stdout.strip())

    # -- sshd and clients ---------------------------------------------------------------

    def start_sshd(self):
        w = self.work
        if not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", 0o755)
        for key in ("host_ed25519", "id_ed25519"):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"bench-{key}", "-f",
                 os.path.join(w, key)])
        shutil.copy(os.path.join(w, "id_ed25519.pub"), os.path.join(w, "authorized_keys"))
        with open(os.path.join(w, "sshd_config"), "w") as f:
            f.write(f"""ListenAddress {SERVER_IP}
Port 22
HostKey {w}/host_ed25519
PidFile {w}/sshd.pid
AuthorizedKeysFile {w}/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
MaxStartups 100
MaxSessions 100
LogLevel VERBOSE
PrintMotd no
Subsystem sftp {SFTP_SERVER}
""")
        host_key = " ".join(open(os.path.join(w, "host_ed25519.pub")).read().split()[:2])
        with open(os.path.join(w, "known_hosts"), "w") as f:
            f.write(f"{SERVER_IP} {host_key}\n")
        self.ssh_config = os.path.join(w, "ssh_config")
        with open(self.ssh_config, "w") as f:
            f.write(f"""Host link
  HostName {SERVER_IP}
  User {pwd.getpwuid(os.getuid()).pw_name}
  IdentityFile {w}/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile {w}/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  Ciphers {self.args.cipher}
""")
        os.chmod(self.ssh_config, 0o600)
        self.sshd_log = open(os.path.join(w, "sshd.log"), "w")
        self.sshd = self.popen(self.server, ["/usr/sbin/sshd", "-D", "-e", "-f",
                                             os.path.join(w, "sshd_config")],
                               cgroup=self.sshd_cg, stdout=self.sshd_log, stderr=self.sshd_log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "Server listening" in open(self.sshd_log.name).read():
                return
            if self.sshd.poll() is not None:
                break
            time.sleep(0.05)
        die(f"sshd did not start: {open(self.sshd_log.name).read()[-400:]}")

    def mux(self):
        return os.path.join(self.state, "link.mux")

    def ssh_cmd(self, via_tether):
        """ssh's command line for scp -S / rsync -e: its own connection, or tether's mux."""
        cmd = ["ssh", "-F", self.ssh_config]
        if via_tether:
            cmd += ["-o", "ControlMaster=no", "-o", f"ControlPath={self.mux()}"]
        else:
            cmd += ["-o", "ControlMaster=no", "-o", "ControlPath=none"]
        return cmd

    def cleanup(self):
        try:
            if self.tether_up:
                self.tether(["down", "--all"], timeout=20)
        except Exception:  # noqa: BLE001 - cleanup goes on
            pass
        self.clear_delay()
        for p in reversed(self.procs):
            stop(p)
        for ns in self.made_ns:
            self.kill_ns(ns)
            run(["ip", "netns", "del", ns], check=False)
        self.sshd_cg.remove()
        self.client_cg.remove()
        if self.args.keep:
            note(f"logs kept in {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def parse_sizes(text):
    """'256' or 'RTT:MiB,...' with an optional bare MiB for the RTTs not named: a dict
    RTT -> MiB with the default under None, or None when the text is not that."""
    sizes = {}
    for part in text.split(","):
        rtt, _, mib = part.rpartition(":")
        try:
            key = int(rtt) if rtt else None
            sizes[key] = int(mib)
        except ValueError:
            return None
        if not 1 <= sizes[key] <= 4096:
            return None
    return sizes


def size_for(args, rtt, direction):
    """MiB a copy moves at this RTT in this direction (--size-mib, --up-size-mib)."""
    sizes = args.up_size_mib if direction == "up" and args.up_size_mib else args.size_mib
    return sizes.get(rtt, sizes.get(None, 256))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class Runner:
    def __init__(self, bed, args):
        self.bed = bed
        self.args = args
        self.rows = []
        self.failed = False
        self.sources = {}  # MiB -> (path, sha256)
        self.size = 0
        self.src = self.src_sha = None

    def use_size(self, rtt, direction):
        """Makes the copies that follow move the file of this RTT's and direction's size."""
        mib = size_for(self.args, rtt, direction)
        if mib not in self.sources:
            # One file at a time: /dev/shm holds it and its copy.
            for path, _ in self.sources.values():
                os.unlink(path)
            self.sources.clear()
            path = os.path.join(self.bed.work, f"src-{mib}.bin")
            with open(path, "wb") as f:
                for _ in range(mib):
                    f.write(os.urandom(1 << 20))
            self.sources[mib] = (path, sha256(path))
        self.src, self.src_sha = self.sources[mib]
        self.size = mib << 20

    def cpu(self):
        return self.bed.sshd_cg.usage(), self.bed.client_cg.usage()

    def record(self, rtt, mode, direction, tool, nbytes, seconds, cpu0, extra=None):
        s1, c1 = self.cpu()
        gb = nbytes / 1e9
        row = {"rtt_ms": rtt, "mode": mode, "direction": direction, "tool": tool,
               "bytes": nbytes, "seconds": round(seconds, 3),
               "mbps": nbytes * 8 / seconds / 1e6 if seconds > 0 and nbytes > 0 else math.nan,
               "sshd_cpu_s_per_gb": (s1 - cpu0[0]) / gb if gb > 0 else math.nan,
               "client_cpu_s_per_gb": (c1 - cpu0[1]) / gb if gb > 0 else math.nan}
        if extra:
            row.update(extra)
        if math.isnan(row["mbps"]):
            self.failed = True
        self.rows.append(row)
        note(f"  {mode} {direction} {tool}: {row['mbps']:.0f} Mbit/s, sshd "
             f"{row['sshd_cpu_s_per_gb']:.2f} s/GB, client {row['client_cpu_s_per_gb']:.2f} s/GB")

    # -- -L with iperf3 -------------------------------------------------------------------

    def iperf(self, addr, port, direction, label):
        """One iperf3 run; (bytes, seconds, per-second Mbit/s list) or None."""
        srv = self.bed.popen(self.bed.server, ["iperf3", "-s", "-1", "-p", str(IPERF_PORT)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = run(["ip", "netns", "exec", self.bed.server, "ss", "-Hltn",
                     f"sport = :{IPERF_PORT}"], check=False)
            if r.stdout.strip():
                break
            time.sleep(0.05)
        args = ["iperf3", "-c", addr, "-p", str(port), "-t", str(self.args.seconds), "-O", "2",
                "-J", "--connect-timeout", "5000"]
        if direction == "down":
            args.append("-R")
        out = os.path.join(self.bed.work, "iperf.json")
        with open(out, "w") as f:
            rc, _, err = self.bed.in_ns(self.bed.laptop, args, stdout=f,
                                        timeout=self.args.seconds + 40)
        try:
            srv.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            stop(srv)
        if rc != 0:
            note(f"{label}: iperf3 failed: {err.strip()[-200:]} {open(out).read()[-300:]}")
            return None
        doc = json.load(open(out))
        end = doc["end"]["sum_received"]
        series = [i["sum"]["bits_per_second"] / 1e6 for i in doc["intervals"]
                  if not i["sum"].get("omitted")]
        return int(end["bytes"]), float(end["seconds"]), series

    def run_L(self, rtt, ossh_ok, tether_ok):
        for direction in self.args.directions:
            for _ in range(self.args.repeat):
                for tool, addr, port, ok in (("tcp", SERVER_IP, IPERF_PORT, True),
                                             ("openssh", "127.0.0.1", OSSH_PORT, ossh_ok),
                                             ("tether", "127.0.0.1", TETHER_PORT, tether_ok)):
                    if tool not in self.args.tools:
                        continue
                    if not ok:
                        self.failed = True
                        continue
                    cpu0 = self.cpu()
                    got = self.iperf(addr, port, direction, f"-L {direction} {tool}")
                    if got is None:
                        self.record(rtt, "L", direction, tool, 0, 0, cpu0)
                        continue
                    nbytes, seconds, series = got
                    extra = {"series_mbps": [round(x, 1) for x in series]}
                    win = 10
                    if len(series) >= 2 * win:
                        tens = [statistics.mean(series[i:i + win])
                                for i in range(len(series) - win + 1)]
                        extra["best_10s_mbps"] = round(max(tens), 1)
                        extra["last_10s_mbps"] = round(tens[-1], 1)
                    self.record(rtt, "L", direction, tool, nbytes, seconds, cpu0, extra)

    # -- copies ---------------------------------------------------------------------------

    def copy(self, rtt, mode, direction, tool):
        """One file copy; checks it arrived intact and records it."""
        via = tool == "tether"
        dst = os.path.join(self.bed.work, "dst.bin")
        if os.path.exists(dst):
            os.unlink(dst)
        remote_src = f"link:{self.src}"
        remote_dst = f"link:{dst}"
        stdin = stdout = None
        if mode in ("scp", "scp-O"):
            args = ["scp", "-q", "-S", "ssh", "-F", self.bed.ssh_config]
            if mode == "scp-O":
                args.append("-O")  # the legacy protocol: one stream, no SFTP requests
            args += ["-o", "ControlMaster=no", "-o",
                     f"ControlPath={self.bed.mux() if via else 'none'}"]
            args += [remote_src, dst] if direction == "down" else [self.src, remote_dst]
        elif mode == "rsync":
            args = ["rsync", "-q", "--whole-file", "-e", " ".join(self.bed.ssh_cmd(via))]
            args += [remote_src, dst] if direction == "down" else [self.src, remote_dst]
        else:  # cat
            remote = f"cat {self.src}" if direction == "down" else f"cat > {dst}"
            if via:
                args = [self.args.tether, "-F", self.bed.ssh_config, "exec", "link", "--",
                        remote]
            else:
                args = self.bed.ssh_cmd(False) + ["link", remote]
            if direction == "down":
                stdout = open(dst, "wb")
            else:
                stdin = open(self.src, "rb")
        env = dict(os.environ, TETHER_STATE_DIR=self.bed.state)
        cpu0 = self.cpu()
        timeout = max(60, self.size * 8 / 20e6)  # no slower than 20 Mbit/s
        rc, seconds, err = self.bed.in_ns(self.bed.laptop, args, cgroup=self.bed.client_cg,
                                          env=env, stdin=stdin, stdout=stdout, timeout=timeout)
        for f in (stdin, stdout):
            if f:
                f.close()
        ok = rc == 0 and os.path.exists(dst) and os.path.getsize(dst) == self.size
        if ok and sha256(dst) != self.src_sha:
            ok = False
            err = "the copy differs from the source"
        if not ok:
            note(f"{mode} {direction} {tool} at {rtt} ms failed (exit {rc}): {err.strip()[-300:]}")
            self.record(rtt, mode, direction, tool, 0, 0, cpu0)
            return
        self.record(rtt, mode, direction, tool, self.size, seconds, cpu0)

    # -- one RTT --------------------------------------------------------------------------

    def stripe(self, rtt, direction, n):
        """The file in `n` parts over `n` concurrent `tether exec cat` (one channel each)."""
        part = self.size // n
        srcs, dsts = [], []
        for k in range(n):
            src = os.path.join(self.bed.work, f"part{k}of{n}.src")
            dst = os.path.join(self.bed.work, f"part{k}.dst")
            if not os.path.exists(src) or os.path.getsize(src) != part:
                with open(self.src, "rb") as f, open(src, "wb") as out:
                    f.seek(k * part)
                    out.write(f.read(part))
            if os.path.exists(dst):
                os.unlink(dst)
            srcs.append(src)
            dsts.append(dst)
        env = dict(os.environ, TETHER_STATE_DIR=self.bed.state)
        cpu0 = self.cpu()
        start = time.monotonic()
        procs, files = [], []
        for src, dst in zip(srcs, dsts):
            remote = f"cat {src}" if direction == "down" else f"cat > {dst}"
            fin = open(src, "rb") if direction == "up" else subprocess.DEVNULL
            fout = open(dst, "wb") if direction == "down" else subprocess.DEVNULL
            files += [f for f in (fin, fout) if f is not subprocess.DEVNULL]
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", self.bed.laptop, self.args.tether, "-F",
                 self.bed.ssh_config, "exec", "link", "--", remote],
                preexec_fn=self.bed.client_cg.join, env=env, stdin=fin, stdout=fout,
                stderr=subprocess.DEVNULL))
        deadline = start + max(60, self.size * 8 / 20e6)
        ok = True
        for p in procs:
            try:
                ok = p.wait(max(1, deadline - time.monotonic())) == 0 and ok
            except subprocess.TimeoutExpired:
                stop(p)
                ok = False
        seconds = time.monotonic() - start
        for f in files:
            f.close()
        for src, dst in zip(srcs, dsts):
            ok = ok and os.path.exists(dst) and sha256(src) == sha256(dst)
        tool = f"tether x{n}"
        if not ok:
            note(f"stripe {direction} x{n} at {rtt} ms failed")
            self.record(rtt, "stripe", direction, tool, 0, 0, cpu0)
            return
        self.record(rtt, "stripe", direction, tool, part * n, seconds, cpu0)

    def run_rtt(self, rtt):
        bed = self.bed
        bed.set_delay(rtt)
        probe = bed.probe_rtt()
        note(f"RTT {rtt} ms: probe (TCP connect, median of 5) {probe} ms")
        self.probes[rtt] = probe
        ossh = None
        ossh_ok = tether_ok = True
        if "L" in self.args.modes and "openssh" in self.args.tools:
            log = open(os.path.join(bed.work, f"ssh-L-{rtt}.log"), "w")
            ossh = bed.popen(bed.laptop, ["ssh", "-F", bed.ssh_config, "-N", "-o",
                                          "ExitOnForwardFailure=yes", "-o", "ControlPath=none",
                                          "-L", f"{OSSH_PORT}:127.0.0.1:{IPERF_PORT}", "link"],
                             cgroup=bed.client_cg, stdout=log, stderr=log)
        up = ["-v"] * self.args.verbose + ["up", "link"]
        if self.args.lanes is not None:
            up += ["--lanes", str(self.args.lanes)]
        if "L" in self.args.modes:
            up += ["-L", f"{TETHER_PORT}:127.0.0.1:{IPERF_PORT}"]
        rc, _, err = bed.tether(up, timeout=90)
        bed.tether_up = True
        if rc != 0:
            note(f"tether up at {rtt} ms failed: {err.strip()[-400:]}")
            tether_ok = False
        if ossh is not None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = run(["ip", "netns", "exec", bed.laptop, "ss", "-Hltn",
                         f"sport = :{OSSH_PORT}"], check=False)
                if r.stdout.strip():
                    break
                if ossh.poll() is not None:
                    ossh_ok = False
                    break
                time.sleep(0.1)
            else:
                ossh_ok = False
        for mode in self.args.modes:
            if mode == "L":
                note(f"RTT {rtt} ms: -L")
                self.run_L(rtt, ossh_ok, tether_ok)
                continue
            if mode == "stripe":
                for direction in self.args.directions:
                    note(f"RTT {rtt} ms: stripe {direction}")
                    self.use_size(rtt, direction)
                    for _ in range(self.args.repeat):
                        for n in (1, 2, 4, 8):
                            if tether_ok:
                                self.stripe(rtt, direction, n)
                continue
            for direction in self.args.directions:
                note(f"RTT {rtt} ms: {mode} {direction}")
                self.use_size(rtt, direction)
                # Repeats alternate the two, so that a busy moment of the machine does not
                # fall on one side only; the report gives each side's median.
                for _ in range(self.args.repeat):
                    for tool in ("openssh", "tether"):
                        if tool not in self.args.tools:
                            continue
                        if tool == "tether" and not tether_ok:
                            self.failed = True
                            continue
                        self.copy(rtt, mode, direction, tool)
        stop(ossh)
        bed.tether(["down", "link"], timeout=30)

    def run(self):
        self.probes = {}
        for rtt in self.args.rtts:
            self.run_rtt(rtt)


def show(x, fmt):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt % x


def report(runner, args, bed):
    rows = runner.rows
    load = open("/proc/loadavg").read().split()[:3]
    print(f"Over one end-to-end TCP connection (nfq_delay, RTT/2 on arrival at each end), "
          f"cipher {args.cipher}; {subprocess.run(['ssh', '-V'], capture_output=True, text=True).stderr.strip()}; "
          f"{os.cpu_count()} cores, load {' '.join(load)} at the end")
    print(f"-L: iperf3 {args.seconds} s (+2 omitted); copies checked byte-identical; "
          f"CPU = CPU seconds per GB moved, sshd side and laptop side"
          + (f"; each figure the median of {args.repeat} runs" if args.repeat > 1 else ""))
    for rtt in args.rtts:
        print(f"\nRTT {rtt} ms (probe {runner.probes.get(rtt, math.nan)} ms; copies "
              f"{size_for(args, rtt, 'down')} MiB down, {size_for(args, rtt, 'up')} MiB up)")
        head = ("", "OpenSSH Mbit/s", "tether Mbit/s", "ratio", "sshd CPU s/GB o|t",
                "client CPU s/GB o|t", "tcp Mbit/s")
        table = [head]
        for mode in args.modes:
            for d in args.directions:
                def get(tool):
                    # With --repeat: the run of median throughput (a failed one counts low).
                    runs = [r for r in rows
                            if (r["rtt_ms"], r["mode"], r["direction"], r["tool"]) == (rtt, mode, d, tool)]
                    if not runs:
                        return None
                    runs.sort(key=lambda r: -1 if math.isnan(r["mbps"]) else r["mbps"])
                    return runs[(len(runs) - 1) // 2]
                if mode == "stripe":
                    one = get("tether x1")
                    for n in (1, 2, 4, 8):
                        r = get(f"tether x{n}")
                        if r is None:
                            continue
                        gain = r["mbps"] / one["mbps"] if one and one["mbps"] > 0 else math.nan
                        table.append((f"stripe {d}: {n} channel(s)", "", show(r["mbps"], "%.0f"),
                                      show(gain, "%.2fx of 1"),
                                      " | " + show(r["sshd_cpu_s_per_gb"], "%.2f"),
                                      " | " + show(r["client_cpu_s_per_gb"], "%.2f"), ""))
                    continue
                o, t, c = get("openssh"), get("tether"), get("tcp")
                if o is None and t is None:
                    continue
                om = o["mbps"] if o else math.nan
                tm = t["mbps"] if t else math.nan
                ratio = tm / om if om and not math.isnan(om) and not math.isnan(tm) else math.nan
                label = ("-L" if mode == "L" else mode + (" via mux" if mode in ("scp", "scp-O", "rsync") else "")) + " " + d
                if t and "last_10s_mbps" in t:
                    label += f" (tether best/last 10 s {t['best_10s_mbps']:.0f}/{t['last_10s_mbps']:.0f})"
                table.append((label, show(om, "%.0f"), show(tm, "%.0f"), show(ratio, "%.2fx"),
                              show(o and o["sshd_cpu_s_per_gb"], "%.2f") + " | " +
                              show(t and t["sshd_cpu_s_per_gb"], "%.2f"),
                              show(o and o["client_cpu_s_per_gb"], "%.2f") + " | " +
                              show(t and t["client_cpu_s_per_gb"], "%.2f"),
                              show(c and c["mbps"], "%.0f")))
        width = [max(len(r[i]) for r in table) for i in range(len(head))]
        for r in table:
            print("  ".join(c.ljust(width[i]) if i == 0 else c.rjust(width[i])
                            for i, c in enumerate(r)))
    if args.json:
        def clean(x):
            if isinstance(x, float):
                return None if math.isnan(x) else round(x, 3)
            return x
        doc = {"benchmark": NAME, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "cipher": args.cipher, "seconds": args.seconds,
               "size_mib": {r: size_for(args, r, "down") for r in args.rtts},
               "up_size_mib": {r: size_for(args, r, "up") for r in args.rtts},
               "repeat": args.repeat, "load": open("/proc/loadavg").read().split()[:3],
               "cores": os.cpu_count(), "probes_ms": runner.probes,
               "results": [{k: clean(v) for k, v in r.items()} for r in rows]}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rtts", default="0,50,100,200")
    ap.add_argument("--modes", default="L,scp,rsync,cat")
    ap.add_argument("--directions", default="down,up")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--size-mib", default="256",
                    help="MiB a copy moves: N, or per RTT as RTT:N,... (a bare N for the rest), "
                         "e.g. 256,100:512,200:512: the fixed start of a copy (scp's SFTP "
                         "round trips, the sender's slow start) weighs less in a larger file")
    ap.add_argument("--up-size-mib", default=None,
                    help="the same for uploads (default: --size-mib)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each figure, alternating OpenSSH and tether; the median shown")
    ap.add_argument("--cipher", default="chacha20-poly1305@openssh.com")
    ap.add_argument("--lanes", type=int, default=None)
    ap.add_argument("--tools", default="tcp,openssh,tether",
                    help="contenders to run (tcp only in -L)")
    ap.add_argument("--tether", default=os.path.join(root, "build/src/tether"))
    ap.add_argument("--nfq-delay", default=os.path.join(root, "build/tests/nfq_delay"))
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true", help="keep the logs (the work directory)")
    ap.add_argument("-v", "--verbose", action="count", default=0,
                    help="the daemon logs more (its receive windows: -v), with --keep")
    args = ap.parse_args()
    try:
        args.rtts = [int(x) for x in args.rtts.split(",")]
    except ValueError:
        die("--rtts: a comma-separated list of milliseconds")
    if any(r < 0 or r > 2000 for r in args.rtts):
        die("--rtts: each 0..2000 ms")
    args.modes = args.modes.split(",")
    args.directions = args.directions.split(",")
    args.tools = args.tools.split(",")
    if not set(args.tools) <= {"tcp", "openssh", "tether"}:
        die("--tools: tcp, openssh, tether")
    if not set(args.modes) <= {"L", "scp", "scp-O", "rsync", "cat", "stripe"}:
        die("--modes: L, scp, scp-O, rsync, cat, stripe")
    if not set(args.directions) <= {"down", "up"}:
        die("--directions: down, up")
    if not 1 <= args.seconds <= 600:
        die("--seconds: 1..600")
    args.size_mib = parse_sizes(args.size_mib)
    if args.size_mib is None:
        die("--size-mib: N or RTT:N,... with each N in 1..4096")
    if args.up_size_mib is not None:
        args.up_size_mib = parse_sizes(args.up_size_mib)
        if args.up_size_mib is None:
            die("--up-size-mib: N or RTT:N,... with each N in 1..4096")
    if not 1 <= args.repeat <= 9:
        die("--repeat: 1..9")
    if not re.fullmatch(r"[A-Za-z0-9@._-]+", args.cipher):
        die("--cipher: one cipher name")
    if os.geteuid() != 0:
        die("needs root (ip netns, iptables, cgroups)")
    for path in (args.tether, args.nfq_delay):
        if not os.access(path, os.X_OK):
            die(f"no executable at {path} (build it first)")
    args.tether = os.path.realpath(args.tether)
    args.nfq_delay = os.path.realpath(args.nfq_delay)
    for tool in ("ip", "iptables", "iperf3", "ssh", "scp", "rsync", "sshd" if os.path.exists("/usr/sbin/sshd") else "ssh"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            die(f"{tool} not found (scripts/setup.sh installs it)")
    bed = Bed(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        bed.make_network()
        bed.start_sshd()
        runner = Runner(bed, args)
        runner.run()
        report(runner, args, bed)
    finally:
        bed.cleanup()
    sys.exit(1 if runner.failed else 0)


if __name__ == "__main__":
    main()
