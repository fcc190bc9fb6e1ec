#!/usr/bin/env python3
"""Reconnection storm at scale: N connected clients, half of them reset at once, reconnecting
with exponential backoff (initial 200 ms) without jitter and with full jitter.

For each run: the built-in server runs as its own process (`wsstorm serve`, pinned to CPU 1,
printing its counts every 100 ms), the tool on CPU 0. Reported per jitter mode, median of RUNS
runs: time until 99 % of the clients are connected again (the tool's recovery figure), the peak
accept rate the server saw (over 100 ms and over 1 s), and the tool's peak CPU (over 1 s) and
peak RSS during the run.

Usage: python3 bench/scripts/storm.py            (CLIENTS=19900 RUNS=3 by default)
Only loopback; every process it starts is stopped by its PID.
"""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = ROOT / "target" / "release" / "wsstorm"
CLIENTS = int(os.environ.get("CLIENTS", "19900"))
RUNS = int(os.environ.get("RUNS", "3"))
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

SCENARIO = """
name = "storm-{jitter}"
target = "ws://127.0.0.1:{port}/"
duration = "40s"
[connect]
timeout = "10s"
[reconnect]
strategy = "exponential"
initial = "200ms"
max = "10s"
jitter = "{jitter}"
[correlation]
request_id = "/id"
timeout = "5s"
[[phases]]
clients = {clients}
ramp = "20s"
hold = "20s"
[[steps]]
send = '{{"id":"{{{{id}}}}","op":"status"}}'
expect = "response"
[[steps]]
sleep = "5s"
[[chaos]]
at = "28s"
drop = "50%"
how = "reset"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid):
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * PAGE / 2**20


def one_run(jitter, out):
    port = free_port()
    scenario = out / f"storm-{jitter}.toml"
    scenario.write_text(SCENARIO.format(jitter=jitter, port=port, clients=CLIENTS))
    server_log = open(out / f"server-{jitter}.log", "w")
    server = subprocess.Popen(
        ["taskset", "-c", "1", str(BIN), "serve", "--listen", f"127.0.0.1:{port}", "--stats-every", "100ms"],
        stdout=server_log, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        tool = subprocess.Popen(
            ["taskset", "-c", "0", str(BIN), "run", str(scenario), "--quiet", "--out", str(out / jitter)],
            stdout=subprocess.DEVNULL, stderr=open(out / f"tool-{jitter}.err", "w"))
        samples = []  # (time, cpu seconds, rss MiB)
        deadline = time.time() + 120
        while tool.poll() is None and time.time() < deadline:
            try:
                samples.append((time.time(), cpu_seconds(tool.pid), rss_mib(tool.pid)))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
            time.sleep(0.1)
        if tool.poll() is None:
            tool.send_signal(signal.SIGINT)
            tool.wait(timeout=30)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()
    summary = json.loads((out / jitter / "summary.json").read_text())
    accepted = [int(m.group(1)) for m in
                re.finditer(r"accepted\s+(\d+)", (out / f"server-{jitter}.log").read_text())]
    # Peak CPU over any 1 s window of the samples.
    peak_cpu = 0.0
    j = 0
    for i in range(len(samples)):
        while samples[i][0] - samples[j][0] > 1.0:
            j += 1
        if samples[i][0] - samples[j][0] >= 0.9:
            peak_cpu = max(peak_cpu, (samples[i][1] - samples[j][1]) / (samples[i][0] - samples[j][0]) * 100)
    recovery = summary["recovery"][0] if summary["recovery"] else {}
    storm_accepts = accepted[285:]  # 100 ms lines: the storm is at 28 s after the server's start + 0.5 s
    return {
        "hit": recovery.get("hit"),
        "connected_before": recovery.get("connected_before"),
        "recovered_s": recovery.get("connected_recovered_s"),
        "peak_accepts_per_100ms_x10": max(storm_accepts or [0]) * 10,
        "peak_accepts_per_s": max((sum(storm_accepts[k:k + 10]) for k in range(max(1, len(storm_accepts) - 9))), default=0),
        "reconnect_p50_ms": summary["latency"]["reconnect_time"]["p50_ms"],
        "reconnect_p99_ms": summary["latency"]["reconnect_time"]["p99_ms"],
        "reconnect_max_ms": summary["latency"]["reconnect_time"]["max_ms"],
        "connect_errors": summary["counts"]["connect_errors"],
        "peak_cpu_pct": round(peak_cpu, 1),
        "peak_rss_mib": round(max((s[2] for s in samples), default=0), 1),
        "outcome": summary["outcome"],
    }


def main():
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = ROOT / "bench" / ".cache" / "storm" / stamp
    results = {"none": [], "full": []}
    for run in range(RUNS):
        for jitter in results:
            out = base / f"run{run + 1}"
            out.mkdir(parents=True, exist_ok=True)
            r = one_run(jitter, out)
            results[jitter].append(r)
            print(f"run {run + 1} jitter={jitter}: {r}", flush=True)
    cpu = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")).split(":")[1].strip()
    lines = [f"reconnection storm: {CLIENTS} clients, 50 % reset at 28 s, exponential backoff from 200 ms; "
             f"median of {RUNS} runs [raw]",
             f"machine: {os.cpu_count()} CPUs, {cpu}, tool on CPU 0, server on CPU 1; raw data {base}"]
    keys = ["hit", "recovered_s", "peak_accepts_per_s", "peak_accepts_per_100ms_x10", "reconnect_p50_ms",
            "reconnect_p99_ms", "reconnect_max_ms", "connect_errors", "peak_cpu_pct", "peak_rss_mib"]
    lines.append(f"{'figure':<28}{'jitter none':>34}{'jitter full':>34}")
    for k in keys:
        cells = []
        for jitter in ("none", "full"):
            vals = [r[k] for r in results[jitter] if r[k] is not None]
            med = statistics.median(vals) if vals else None
            cells.append(f"{med} {vals}")
        lines.append(f"{k:<28}{cells[0]:>34}{cells[1]:>34}")
    text = "\n".join(lines)
    print(text)
    (ROOT / "bench" / ".cache" / "storm-last.txt").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
