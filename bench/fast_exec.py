#!/usr/bin/env python3
"""Commands in milliseconds: tether exec through the resident runner (up --fast-exec)
against a tether session and an OpenSSH ControlMaster, in the same run, same sshd.

  bench/fast_exec.py [--runs 25] [--load 1000] [--parallel 50] [--json FILE]

One throwaway sshd (scripts/testbed.sh) whose HOME for the session is a directory of the
bench (sshd's SetEnv), so the rc file it reads is the bench's: first a clean ~/.bashrc,
then one that takes 200 ms (`sleep 0.2`, what `conda init` or `pyenv init` cost on an ML
server), which Debian's bash reads for `ssh host cmd` too. Contenders, each a fresh client
process per command, as a coding agent runs them:
  runner        tether exec testhost CMD       (daemon up --fast-exec)
  runner_ssh    ssh -S testhost.mux testhost CMD (stock ssh through the same daemon)
  session       tether exec demo CMD           (a daemon without --fast-exec)
  controlmaster ssh -S cm.sock testhost CMD    (OpenSSH's own master)
Commands: `true`, `echo hello`, and `cat` of a 10 MB file (checked byte-identical once per
contender). Interleaved, --runs each; median and p90 in ms, and the ratios to the master.
Then --load commands, --parallel at once, through the runner: every output and exit status
checked. Targets (printed, not asserted): runner median <= 10 ms with either rc, >= 10x
faster than the master with the 200 ms rc, no slower with the clean one.
Every process it starts is ended by PID; the sshd and its directory are removed on exit.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--load", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=50)
    ap.add_argument("--json")
    ap.add_argument("--tether", default=os.path.join(ROOT, "build/src/tether"))
    args = ap.parse_args()
    if not 1 <= args.runs <= 500 or not 0 <= args.load <= 5000 or not 1 <= args.parallel <= 100:
        sys.exit("fast_exec.py: --runs 1..500, --load 0..5000, --parallel 1..100")
    tether = os.path.realpath(args.tether)

    work = tempfile.mkdtemp(prefix="tether-bench-fast-")
    home = os.path.join(work, "home")
    os.mkdir(home, 0o700)
    sshd_dir = os.path.join(work, "sshd")
    state = os.path.join(work, "state")
    env = dict(os.environ, TETHER_STATE_DIR=state,
               TESTBED_SSHD_EXTRA="SetEnv HOME=" + home)
    master = None
    try:
        subprocess.run([os.path.join(ROOT, "scripts/testbed.sh"), "start", sshd_dir], env=env,
                       check=True, timeout=60)
        cfg = os.path.join(sshd_dir, "ssh_config")
        cm = os.path.join(work, "cm.sock")
        master = subprocess.Popen(["ssh", "-F", cfg, "-o", "ControlMaster=yes", "-o",
                                   "ControlPath=" + cm, "-N", "testhost"], env=env)
        for _ in range(100):
            if os.path.exists(cm):
                break
            time.sleep(0.1)
        data = os.urandom(10 * 1000 * 1000)
        with open(os.path.join(home, "ten-mb"), "wb") as f:
            f.write(data)
        want_sha = hashlib.sha256(data).hexdigest()

        def tether_cmd(*a, timeout=60):
            return subprocess.run([tether, "-F", cfg, *a], env=env, capture_output=True,
                                  timeout=timeout)

        argv = {
            "runner": lambda c: [tether, "-F", cfg, "exec", "testhost", "--", c],
            "runner_ssh": lambda c: ["ssh", "-F", cfg, "-o", "ControlMaster=no", "-o",
                                     "ControlPath=" + os.path.join(state, "testhost.mux"),
                                     "testhost", c],
            "session": lambda c: [tether, "-F", cfg, "exec", "demo", "--", c],
            "controlmaster": lambda c: ["ssh", "-F", cfg, "-o", "ControlPath=" + cm, "testhost",
                                        c],
        }

        def run(name, command):
            t = time.monotonic()
            r = subprocess.run(argv[name](command), env=env, capture_output=True, timeout=60)
            return (time.monotonic() - t) * 1000, r

        def fast_state():
            r = tether_cmd("status", "--json")
            try:
                for h in json.loads(r.stdout)["hosts"]:
                    if h["host"] == "testhost":
                        return h.get("fast_exec") or {}
            except (ValueError, KeyError):
                pass
            return {}

        def wait_ready():
            for _ in range(300):
                if fast_state().get("state") == "ready":
                    return True
                time.sleep(0.1)
            return False

        results = {"runs": args.runs}
        up = tether_cmd("up", "testhost", "--fast-exec")
        if up.returncode != 0:
            sys.exit("fast_exec.py: tether up --fast-exec failed: " + up.stderr.decode())
        up = tether_cmd("up", "demo")
        if up.returncode != 0:
            sys.exit("fast_exec.py: tether up demo failed: " + up.stderr.decode())

        for rc_name, rc_text in (("clean rc", ""), ("200 ms rc", "sleep 0.2\n")):
            with open(os.path.join(home, ".bashrc"), "w") as f:
                f.write(rc_text + "export BENCH_RC=1\n")
            # The runner sees the change, ends, and comes back with the new environment; the
            # first command through it after that teaches the daemon the server's AcceptEnv.
            run("runner", "true")
            if not wait_ready():
                sys.exit("fast_exec.py: the runner did not come back: %s" % fast_state())
            for name in argv:
                run(name, "true")
            by_runner_before = fast_state().get("by_runner", 0)
            table = {}
            for label, command in (("true", "true"), ("echo", "echo hello"),
                                   ("cat 10 MB", "cat \"$HOME/ten-mb\"")):
                samples = {n: [] for n in argv}
                for i in range(args.runs):
                    for name in argv:
                        ms, r = run(name, command)
                        if r.returncode != 0:
                            sys.exit("fast_exec.py: %s %r failed: %s" %
                                     (name, command, r.stderr.decode()[-300:]))
                        if i == 0 and label == "cat 10 MB" and \
                                hashlib.sha256(r.stdout).hexdigest() != want_sha:
                            sys.exit("fast_exec.py: %s: the 10 MB copy differs" % name)
                        if label == "echo" and r.stdout != b"hello\n":
                            sys.exit("fast_exec.py: %s: echo said %r" % (name, r.stdout))
                        samples[name].append(ms)
                table[label] = {n: {"median_ms": round(statistics.median(v), 1),
                                    "p90_ms": round(percentile(v, 90), 1)}
                                for n, v in samples.items()}
            by_runner = fast_state().get("by_runner", 0) - by_runner_before
            results[rc_name] = {"commands": table, "by_runner": by_runner}
            print("\n%s (median / p90 ms, %d runs each; %d of the runner's %d went by it)" %
                  (rc_name, args.runs, by_runner, 3 * args.runs * 2))
            print("%-10s %16s %16s %16s %16s %10s" % ("", "runner", "runner via ssh",
                                                     "tether session", "ControlMaster",
                                                     "master/runner"))
            for label, row in table.items():
                cells = ["%6.1f / %6.1f" % (row[n]["median_ms"], row[n]["p90_ms"]) for n in argv]
                ratio = row["controlmaster"]["median_ms"] / max(row["runner"]["median_ms"], 0.1)
                print("%-10s %16s %16s %16s %16s %9.1fx" % (label, *cells, ratio))

        if args.load:
            wrong = []

            def one(i):
                c = "echo %d; echo e%d >&2; exit %d" % (i, i, i % 7)
                r = subprocess.run(argv["runner"](c), env=env, capture_output=True, timeout=120)
                ok = (r.stdout == b"%d\n" % i and r.stderr == b"e%d\n" % i and
                      r.returncode == i % 7)
                return None if ok else (i, r.returncode, r.stdout[-100:], r.stderr[-200:])

            before = fast_state().get("by_runner", 0)
            t = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
                for bad in pool.map(one, range(args.load)):
                    if bad:
                        wrong.append(bad)
            took = time.monotonic() - t
            by_runner = fast_state().get("by_runner", 0) - before
            results["load"] = {"commands": args.load, "parallel": args.parallel,
                               "seconds": round(took, 2), "wrong": len(wrong),
                               "by_runner": by_runner}
            print("\nload: %d commands, %d at once, through the runner (200 ms rc): %.1f s, "
                  "%.0f commands/s, %d wrong, %d by the runner" %
                  (args.load, args.parallel, took, args.load / took, len(wrong), by_runner))
            for w in wrong[:5]:
                print("  wrong:", w)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        subprocess.run([tether, "down", "--all"], env=env, capture_output=True, timeout=60)
        if master is not None:
            master.terminate()
            try:
                master.wait(10)
            except subprocess.TimeoutExpired:
                master.kill()
        subprocess.run([os.path.join(ROOT, "scripts/testbed.sh"), "stop", sshd_dir], env=env,
                       capture_output=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
