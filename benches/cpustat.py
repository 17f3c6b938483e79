#!/usr/bin/env python3
"""CPU accounting for benches/features.sh on a shared machine: how much of the CPU went to
processes that are not part of the benchmark while a run was timed.

    python3 benches/cpustat.py snap FILE
    python3 benches/cpustat.py diff BEFORE AFTER --ours PID[,PID...] --children-of PID
                                    [--extra-cpu SECONDS]
    python3 benches/cpustat.py busy SECONDS

`snap` saves /proc/stat and utime+stime of every process. `diff` prints one tab-separated line:

    busy%  softirq%  steal%  server%  extra%  foreign%  top-foreign

as percentages of all cores over the interval: busy = user+nice+system (whole machine),
softirq and steal separately (loopback networking is mostly softirq; steal is time the
hypervisor gave to others), server = the CPU of our processes (the --ours pids, the children
of --children-of, e.g. our postmaster, and the children it reaped meanwhile, e.g. PostgreSQL's
parallel workers), extra = --extra-cpu seconds (e.g. wrk's
user+sys from /usr/bin/time), foreign = busy - server - extra. Processes that started and ended inside the interval are only
in `busy`, so foreign counts them too, which is the point. `busy SECONDS` prints the
machine's busy% over a fresh interval (a quietness check before timing).
"""

import argparse
import json
import os
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def machine():
    with open("/proc/stat") as f:
        parts = f.readline().split()
    # cpu user nice system idle iowait irq softirq steal ...
    return [int(x) for x in parts[1:9]]


def procs():
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1 : s.rindex(")")]
        rest = s[s.rindex(")") + 2 :].split()
        # fields after comm: state ppid ... utime(12th) stime(13th) cutime cstime (1-based
        # from state); cutime+cstime: CPU of children already reaped (e.g. PostgreSQL's
        # short-lived parallel workers, reaped by the postmaster)
        out[name] = [comm, int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14])]
    return out


def snap(path):
    data = {"t": time.monotonic(), "stat": machine(), "procs": procs()}
    with open(path, "w") as f:
        json.dump(data, f)


def diff(a_path, b_path, ours, children_of, extra):
    a = json.load(open(a_path))
    b = json.load(open(b_path))
    cores = os.cpu_count() or 1
    d = [y - x for x, y in zip(a["stat"], b["stat"])]
    total = sum(d) or 1
    busy = (d[0] + d[1] + d[2]) / total * 100
    softirq = d[6] / total * 100
    steal = d[7] / total * 100
    wall = max(b["t"] - a["t"], 1e-9)
    ours_set = {str(p) for p in ours}
    ours_ticks = 0
    foreign = {}
    for pid, (comm, ppid, ticks, reaped) in b["procs"].items():
        before = a["procs"].get(pid)
        # (kernel workers rename themselves as they go: match by pid only)
        same = before is not None and before[1] == ppid
        if same and children_of and pid == str(children_of):
            ours_ticks += reaped - before[3]
        delta = ticks - (before[2] if same else 0)
        if delta <= 0:
            continue
        if pid in ours_set or (children_of and ppid == children_of):
            ours_ticks += delta
        else:
            foreign[comm] = foreign.get(comm, 0) + delta
    server_pct = ours_ticks / HZ / (wall * cores) * 100
    extra_pct = extra / (wall * cores) * 100
    foreign_pct = max(busy - server_pct - extra_pct, 0.0)
    top = sorted(foreign.items(), key=lambda kv: -kv[1])[:3]
    top_text = ",".join(f"{c}:{t / HZ / (wall * cores) * 100:.0f}%" for c, t in top if t / HZ / wall > 0.02) or "-"
    print(f"{busy:.0f}\t{softirq:.0f}\t{steal:.0f}\t{server_pct:.0f}\t{extra_pct:.0f}\t{foreign_pct:.0f}\t{top_text}")


def busy(seconds):
    a = machine()
    time.sleep(seconds)
    b = machine()
    d = [y - x for x, y in zip(a, b)]
    print(f"{(d[0] + d[1] + d[2]) / (sum(d) or 1) * 100:.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snap")
    s.add_argument("file")
    d = sub.add_parser("diff")
    d.add_argument("before")
    d.add_argument("after")
    d.add_argument("--ours", default="")
    d.add_argument("--children-of", type=int, default=0)
    d.add_argument("--extra-cpu", type=float, default=0.0)
    b = sub.add_parser("busy")
    b.add_argument("seconds", type=float)
    args = ap.parse_args()
    if args.cmd == "snap":
        snap(args.file)
    elif args.cmd == "diff":
        ours = [p for p in args.ours.split(",") if p]
        diff(args.before, args.after, ours, args.children_of, args.extra_cpu)
    else:
        busy(args.seconds)


if __name__ == "__main__":
    sys.exit(main())
