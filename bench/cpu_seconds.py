#!/usr/bin/env python3
"""CPU seconds (user + system) used so far by processes and all their descendants.

  bench/cpu_seconds.py PID...

Prints one number: the sum over each PID and every live process below it, all threads
included (/proc/PID/stat utime + stime). A bench reads it before and after a run; the
difference is what that process tree spent on the run. Children that exited during the run
count only once reaped into their parent's cutime, which is not included: measure trees
whose processes live through the run (ssh, sshd's session processes, the tether daemon).
"""
import os
import sys


def read_stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    rest = data[data.rindex(")") + 2:].split()
    ppid = int(rest[1])
    utime, stime = int(rest[11]), int(rest[12])
    return ppid, utime + stime


def main():
    roots = {int(a) for a in sys.argv[1:] if a.isdigit()}
    children, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = read_stat(int(entry))
        if st is None:
            continue
        ppid, t = st
        ticks[int(entry)] = t
        children.setdefault(ppid, []).append(int(entry))
    total, seen, todo = 0, set(), [p for p in roots if p in ticks]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, []))
    print("%.3f" % (total / os.sysconf("SC_CLK_TCK")))


main()
