#!/usr/bin/env python3
"""Run one command and measure it, for bench/run.sh.

- CPU time: user + sys from the kernel's rusage of the command, reaped with wait4.
- Memory: samples of /proc/PID/status every --interval s (VmRSS, and VmHWM: the command's own
  peak RSS). The rusage maxrss is NOT used for memory: Linux carries it across exec, so it
  includes the RSS of this Python process's fork before it exec'd the command (~10-15 MiB).
- With --count-sockets, each sample also counts the sockets the command holds (with --port,
  only its TCP connections ESTABLISHED to that port: its connections to the target), and
  with --hold-sockets N the VmHWM at the last sample holding >= N of them is reported: the
  peak RSS while the connections were held.
- With --tree, each sample also sums VmRSS over the command and all its descendants (the
  worker processes of `wsstorm run --workers`): max_tree_rss_kib. CPU time from wait4 already
  includes the descendants the command reaped.
- With --watch-cpus, the time those CPUs spent in each /proc/stat state over the run (all
  processes); with --other-pid, the user and system time of another process (the echo
  server) over the run.

The command is bounded in time: after --deadline seconds it gets SIGTERM, 5 s later SIGKILL.
A SIGTERM or SIGINT sent to this helper is forwarded to the command (and only to it), so the
caller's trap can stop both by this helper's PID; --pidfile records the command's PID.

Writes one JSON object to --out: exit_code, signal, killed, wall_s, utime_s, stime_s, cpu_s,
maxrss_kib (see above), last_hwm_kib, max_sockets, held_samples, held_hwm_kib, held_rss_kib,
cpus, other_pid_utime_s, other_pid_stime_s, samples [{t, rss, hwm, sockets}]. Exits with the command's code.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def status_kib(pid):
    """VmRSS and VmHWM of pid in KiB, or (None, None) once it is gone."""
    rss = hwm = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def tree_rss_kib(root):
    """(sum of VmRSS, number of processes) of root and all its descendants."""
    parents = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        parents[int(name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    total = 0
    for pid in tree:
        rss, _ = status_kib(pid)
        total += rss or 0
    return total, len(tree)


def established_inodes(port):
    """Inodes of the TCP sockets (v4 and v6) in state ESTABLISHED whose remote port is port."""
    want = "%04X" % port
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    # sl local rem st tx:rx tr:when retrnsmt uid timeout inode
                    if parts[3] == "01" and parts[2].endswith(":" + want):
                        inodes.add(parts[9])
        except OSError:
            pass
    return inodes


def count_sockets(pid, port):
    """Sockets pid holds: all of them, or with port only TCP connections established to it."""
    n = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = established_inodes(port) if port else None
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and (inodes is None or link[8:-1] in inodes):
            n += 1
    return n


CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times_s(cpus):
    """Seconds each CPU in cpus has spent in each state of /proc/stat (user, system, ...)."""
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:] in cpus:
                out[name[3:]] = {k: int(v) / hz for k, v in zip(CPU_FIELDS, fields)}
    return out


def proc_cpu_s(pid):
    """(utime, stime) of a running process, in seconds, or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        hz = os.sysconf("SC_CLK_TCK")
        return int(fields[11]) / hz, int(fields[12]) / hz
    except (OSError, IndexError, ValueError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="JSON result file")
    ap.add_argument("--deadline", type=float, default=120.0, help="seconds before SIGTERM")
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between samples")
    ap.add_argument("--count-sockets", action="store_true")
    ap.add_argument("--port", type=int, default=0,
                    help="with --count-sockets: count only TCP connections established to this port")
    ap.add_argument("--hold-sockets", type=int, default=0,
                    help="report VmHWM at the last sample holding at least this many sockets")
    ap.add_argument("--watch-cpus", default="",
                    help="comma-separated CPUs whose times (user, system, softirq, ...) over the run are reported")
    ap.add_argument("--other-pid", type=int, default=0,
                    help="another running process (the server) whose CPU time during the run is reported")
    ap.add_argument("--tree", action="store_true",
                    help="also sample the summed RSS of the command and all its descendants "
                         "(wsstorm --workers); reported as max_tree_rss_kib")
    ap.add_argument("--pidfile", default=None, help="write the command's PID here")
    ap.add_argument("--stdout", default=None)
    ap.add_argument("--stderr", default=None)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        ap.error("no command given")

    out = open(args.stdout, "wb") if args.stdout else None
    err = open(args.stderr, "wb") if args.stderr else None
    cpus = [c for c in args.watch_cpus.split(",") if c]
    cpu_before = cpu_times_s(cpus)
    other_before = proc_cpu_s(args.other_pid)
    started = time.monotonic()
    child = subprocess.Popen(cmd, stdout=out, stderr=err)
    pid = child.pid
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{pid}\n")

    def forward(signum, _frame):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    samples = []
    killed = False
    term_at = None
    while True:
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            break
        now = time.monotonic() - started
        rss, hwm = status_kib(pid)
        socks = count_sockets(pid, args.port) if args.count_sockets else None
        if rss is not None:
            sample = {"t": round(now, 3), "rss": rss, "hwm": hwm, "sockets": socks}
            if args.tree:
                sample["tree_rss"], sample["tree_n"] = tree_rss_kib(pid)
            samples.append(sample)
        if now > args.deadline and term_at is None:
            killed = True
            term_at = now
            os.kill(pid, signal.SIGTERM)
        elif term_at is not None and now > term_at + 5:
            os.kill(pid, signal.SIGKILL)
        time.sleep(args.interval)
    wall = time.monotonic() - started
    cpu_after = cpu_times_s(cpus)
    other_after = proc_cpu_s(args.other_pid)
    child.returncode = 0  # reaped by wait4 above; keep Popen from waiting again

    held = [s for s in samples if args.hold_sockets and s["sockets"] is not None
            and s["sockets"] >= args.hold_sockets]
    result = {
        "cmd": cmd,
        "pid": pid,
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "killed": killed,
        "wall_s": round(wall, 3),
        "utime_s": ru.ru_utime,
        "stime_s": ru.ru_stime,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        # Linux keeps the largest RSS across exec, so this includes the forked Python before it
        # exec'd the command (~10-15 MiB): use the VmHWM samples for the command's own peak.
        "maxrss_kib": ru.ru_maxrss,
        "last_hwm_kib": samples[-1]["hwm"] if samples else None,
        "max_sockets": max((s["sockets"] for s in samples if s["sockets"] is not None), default=None),
        "held_samples": len(held),
        "held_hwm_kib": held[-1]["hwm"] if held else None,
        "held_rss_kib": held[-1]["rss"] if held else None,
        "max_tree_rss_kib": max((s.get("tree_rss", 0) for s in samples), default=None),
        "max_tree_processes": max((s.get("tree_n", 0) for s in samples), default=None),
        # Seconds each watched CPU spent in each /proc/stat state over the run (all processes,
        # including this helper). Tick-based: good to a few hundredths of a second.
        "cpus": {c: {k: round(cpu_after[c][k] - cpu_before[c][k], 3) for k in CPU_FIELDS}
                 for c in cpu_after if c in cpu_before},
        "other_pid_utime_s": (round(other_after[0] - other_before[0], 3)
                              if other_before and other_after else None),
        "other_pid_stime_s": (round(other_after[1] - other_before[1], 3)
                              if other_before and other_after else None),
        "samples": samples,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    code = result["exit_code"]
    sys.exit(code if code is not None else 128 + (result["signal"] or 0))


if __name__ == "__main__":
    main()
