#!/usr/bin/env python3
"""wsstorm's Socket.IO preset beside Artillery's Socket.IO engine, on the same python-socketio
server, in one run (bench/artillery/README.md).

  bench/artillery/run.sh                      # RUNS=3, ~7 minutes on a 2-CPU machine
  RUNS=5 B_CONNS=2000 bench/artillery/run.sh
  RUNS=1 A_DURATION=5 B_HOLD=5 bench/artillery/run.sh   # a smoke run

A. CPU per ack round trip: closed loop, 50 connections to the namespace /chat, each emitting
   `chat` with an acknowledgement and waiting for the ack before the next emit, for A_DURATION
   seconds. Figures: the generator's CPU time (user + sys) per ack, over its whole process
   life (wait4 rusage, bench/scripts/measure.py) and in the steady state (its /proc CPU time
   over the load window, divided by the acks the server returned in that window).
B. Memory per idle connection: B_CONNS connections opened over B_RAMP s and held idle
   B_HOLD s, against a 1-connection baseline held BASE_HOLD s: (peak RSS holding B_CONNS -
   peak RSS holding 1) / (B_CONNS - 1), in KiB.

Each repetition runs A with both tools, then B (baseline, then B_CONNS) with both tools; the
tool that goes first alternates between repetitions. The server (server.py) runs once for
the whole invocation, pinned to CPU SERVER_CPU; every generator is pinned to CPU GEN_CPU.
Acks come from each tool's own report (wsstorm: summary.json counts.answered; Artillery: its
--output JSON, socketio.response_time count, one per ack, beside the socketio.emit counter)
and are checked against the acks the server counted itself. All on 127.0.0.1; every process is
bounded in time (measure.py's deadline, the server under timeout(1)) and stopped by its PID.

Environment: RUNS (3), A_DURATION (15), B_CONNS (1000), B_RAMP (5), B_HOLD (15),
BASE_HOLD (5), GEN_CPU (0), SERVER_CPU (1), PING_INTERVAL (25), PING_TIMEOUT (20),
QUIET_WAIT (300: before each run, wait at most this many seconds for both CPUs to be under
10 % busy for 3 s; 0: do not wait),
WSSTORM (a binary; default: cargo build --release, in CARGO_TARGET_DIR if set),
SIO_PYTHON (a python with python-socketio and aiohttp; default target/ci-venv/bin/python3),
NODE (node), MARKDOWN (also write the table there).
Output: the table on stdout and in bench/.cache/artillery-last-results.md; raw data in
bench/.cache/artillery/<UTC timestamp>/. Exits 1 if a check failed.
"""

import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"
MEASURE = BENCH / "scripts" / "measure.py"
TOOLS = ("wsstorm", "artillery")


def env_int(name, default):
    v = os.environ.get(name, str(default))
    if not re.fullmatch(r"[0-9]+", v):
        sys.exit(f"{name} must be a whole number, got {v!r}")
    return int(v)


RUNS = env_int("RUNS", 3)
A_DURATION = env_int("A_DURATION", 15)
B_CONNS = env_int("B_CONNS", 1000)
B_RAMP = env_int("B_RAMP", 5)
B_HOLD = env_int("B_HOLD", 15)
BASE_HOLD = env_int("BASE_HOLD", 5)
GEN_CPU = env_int("GEN_CPU", 0)
SERVER_CPU = env_int("SERVER_CPU", 1)
PING_INTERVAL = env_int("PING_INTERVAL", 25)
PING_TIMEOUT = env_int("PING_TIMEOUT", 20)
QUIET_WAIT = env_int("QUIET_WAIT", 300)
NODE = os.environ.get("NODE", "node")
SIO_PYTHON = os.environ.get("SIO_PYTHON", str(ROOT / "target" / "ci-venv" / "bin" / "python3"))
ART_BIN = HERE / "node_modules" / "artillery" / "bin" / "run"
CLK_TCK = os.sysconf("SC_CLK_TCK")
if RUNS < 1 or B_CONNS < 2 or B_RAMP < 1:
    sys.exit("RUNS >= 1, B_CONNS >= 2 and B_RAMP >= 1 are needed")


def log(msg):
    print(f"[artillery-bench {time.strftime('%H:%M:%S', time.gmtime())}] {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"error: {msg}")
    sys.exit(1)


# ---- processes this script started, stopped by PID on exit -------------------------------------
RUNNING = {}  # pid -> (Popen, pidfile of measure.py's command or None)


def stop_all():
    for pid, (proc, pidfile) in list(RUNNING.items()):
        if proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM)  # measure.py and timeout(1) forward it to their command
        try:
            proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            child = read_pid(pidfile) if pidfile else None
            for p in (child, pid):
                if p:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            proc.wait(timeout=5)
        RUNNING.pop(pid, None)


def on_signal(signum, _frame):
    log("interrupted: stopping the processes this run started")
    stop_all()
    sys.exit(130)


def read_pid(path):
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def proc_cpu_s(pid):
    """(utime, stime) of a process (all its threads), in seconds, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def cpu_busy_s():
    """{cpu: seconds busy (user, nice, system, irq, softirq)} for every CPU, from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit():
                v = [int(x) for x in fields[:7]]
                out[int(name[3:])] = (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK
    return out


def wait_quiet():
    """Waits (at most QUIET_WAIT s) until the generator's and the server's CPUs have both been
    under 10 % busy for 3 s in a row: another process's burst (a build, a test suite) would
    skew the CPU figures. The bench's own server is idle between runs."""
    if QUIET_WAIT <= 0:
        return
    start, calm, prev = time.monotonic(), 0, cpu_busy_s()
    while calm < 3:
        if time.monotonic() - start > QUIET_WAIT:
            log(f"warning: the machine was not quiet within {QUIET_WAIT} s; measuring anyway")
            return
        time.sleep(1)
        cur = cpu_busy_s()
        busy = max(cur[c] - prev[c] for c in (GEN_CPU, SERVER_CPU))
        calm = calm + 1 if busy < 0.10 else 0
        prev = cur
    waited = time.monotonic() - start
    if waited > 5:
        log(f"waited {waited:.0f} s for a quiet machine")


def all_cpu_s():
    """{pid: utime + stime in seconds} of every process (all its threads)."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            cpu = proc_cpu_s(name)
            if cpu is not None:
                out[int(name)] = sum(cpu)
    return out


class Others:
    """The CPU time of every process but the bench's own (the generator, the server, measure.py
    and this script), summed since the first scan: what else ran on the machine during a run.
    A process seen only later counts from 0 (all of its time is within the run); one that exits
    keeps what it had at its last scan. Per-process times, not /proc/stat's per-CPU ticks: those
    overstate a CPU that wakes thousands of times a second (the generators here) by ~10 %."""

    def __init__(self, ours):
        self.ours = set(ours)
        self.first = {p: c for p, c in all_cpu_s().items() if p not in self.ours}
        self.last = dict(self.first)

    def scan(self):
        for p, c in all_cpu_s().items():
            if p not in self.ours:
                self.first.setdefault(p, 0.0)
                self.last[p] = c
        return sum(self.last[p] - self.first[p] for p in self.last)


# ---- the server ---------------------------------------------------------------------------------
class Server:
    def __init__(self, run_dir, lifetime):
        self.log_path = run_dir / "server.log"
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(SERVER_CPU), "timeout", str(lifetime), SIO_PYTHON, str(HERE / "server.py"),
             "--ping-interval", str(PING_INTERVAL), "--ping-timeout", str(PING_TIMEOUT)],
            stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        RUNNING[self.proc.pid] = (self.proc, None)
        self.port = None
        for _ in range(100):
            text = self.log_path.read_text()
            if text.startswith("{"):
                self.port = json.loads(text.splitlines()[0])["port"]
                break
            if self.proc.poll() is not None:
                die(f"the server exited: {text}")
            time.sleep(0.1)
        if not self.port:
            die("the server printed no port within 10 s")
        # The python process itself: timeout(1)'s child (taskset exec'd timeout).
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        self.pid = int(children[0])

    def counts(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/counts", timeout=5) as r:
            return json.load(r)

    def settle(self, open_before, limit=20.0):
        """Counts once every session of the last run is gone (the server saw the closes)."""
        deadline = time.monotonic() + limit
        c = self.counts()
        while c["open"] > open_before and time.monotonic() < deadline:
            time.sleep(0.25)
            c = self.counts()
        return c


def diff_counts(before, after):
    d = {k: after[k] - before[k] for k in ("connects", "acks", "upgrades", "deflate_offered")}
    d["disconnects"] = {k: v - before["disconnects"].get(k, 0) for k, v in after["disconnects"].items()
                        if v - before["disconnects"].get(k, 0)}
    d["open_after"] = after["open"]
    return d


# ---- one measured generator run -----------------------------------------------------------------
def measured(run_dir, server, name, deadline, cmd, env=None, measure_opts=()):
    """Runs cmd pinned to GEN_CPU under measure.py; meanwhile samples, every 0.5 s, the
    generator's and the server's CPU time, the two CPUs' user time and the server's ack count.
    Returns (measure.py result, server counts difference, samples)."""
    pidfile = run_dir / f"{name}.pid"
    wait_quiet()
    before = server.counts()
    proc = subprocess.Popen(
        [sys.executable, str(MEASURE), "--out", str(run_dir / f"{name}.json"), "--deadline", str(deadline),
         "--pidfile", str(pidfile), "--stdout", str(run_dir / f"{name}.stdout"),
         "--stderr", str(run_dir / f"{name}.stderr"), "--watch-cpus", f"{GEN_CPU},{SERVER_CPU}",
         "--other-pid", str(server.pid), *measure_opts, "--", "taskset", "-c", str(GEN_CPU), *cmd],
        env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    RUNNING[proc.pid] = (proc, pidfile)
    samples, start, others = [], time.monotonic(), None
    while proc.poll() is None:
        pid = read_pid(pidfile)
        gen = proc_cpu_s(pid) if pid else None
        if gen is not None and others is None:
            others = Others({pid, proc.pid, os.getpid(), server.pid, server.proc.pid})
        if gen is not None:
            try:
                sc = server.counts()
                acks, sessions = sc["acks"], sc["open"] - before["open"]
            except OSError:
                acks = sessions = None
            srv = proc_cpu_s(server.pid)
            samples.append({"t": round(time.monotonic() - start, 3), "gen_user_s": gen[0], "gen_cpu_s": sum(gen),
                            "srv_user_s": srv[0] if srv else None, "srv_cpu_s": sum(srv) if srv else None,
                            "acks": acks, "open": sessions, "others_cpu_s": others.scan()})
        time.sleep(0.5)
    RUNNING.pop(proc.pid, None)
    if proc.returncode != 0:
        log(f"warning: {name} exited with {proc.returncode} (see {run_dir / (name + '.stderr')})")
    after = server.settle(before["open"])
    d = diff_counts(before, after)
    with open(run_dir / f"{name}.samples.json", "w") as f:
        json.dump({"server_before": before, "server_after": after, "server": d, "samples": samples}, f, indent=1)
    time.sleep(2)  # let the machine settle before the next run
    with open(run_dir / f"{name}.json") as f:
        return json.load(f), d, samples


def steady(samples, clients):
    """The load window's figures, from the samples: from 1 s after the server first had all
    `clients` sessions of the run open (and 2 s after its ack count first rose) to 1.5 s before
    the ack count last rose. None when that window is shorter than 3 s."""
    s = [x for x in samples if x["acks"] is not None and x["gen_cpu_s"] is not None]
    rising = [k for k in range(1, len(s)) if s[k]["acks"] > s[k - 1]["acks"]]
    full = [x["t"] for x in s if x["open"] is not None and x["open"] >= clients]
    if not rising or not full:
        return None
    t0 = max(full[0] + 1.0, s[rising[0] - 1]["t"] + 2.0)
    t1 = s[rising[-1]]["t"] - 1.5
    win = [x for x in s if t0 <= x["t"] <= t1]
    if len(win) < 2 or win[-1]["t"] - win[0]["t"] < 3.0:
        return None
    a, b = win[0], win[-1]
    dt, acks = b["t"] - a["t"], b["acks"] - a["acks"]
    gen = b["gen_cpu_s"] - a["gen_cpu_s"]
    have_srv = a["srv_cpu_s"] is not None and b["srv_cpu_s"] is not None
    srv = b["srv_cpu_s"] - a["srv_cpu_s"] if have_srv else None
    return {
        "window_s": dt,
        "acks": acks,
        "acks_per_s": acks / dt,
        "gen_cpu_s": gen,
        "us_per_ack": gen * 1e6 / acks if acks else None,
        "gen_cpu_pct": 100 * gen / dt,
        "srv_cpu_pct": 100 * srv / dt if srv is not None else None,
        # CPU time of every other process on the machine (its quietness), % of one CPU
        "others_pct": 100 * (b["others_cpu_s"] - a["others_cpu_s"]) / dt,
    }


# ---- the tools' commands ------------------------------------------------------------------------
ART_ENV = {"ARTILLERY_DISABLE_TELEMETRY": "true"}


def artillery_cmd(server, yml, out):
    # no-telemetry.cjs: Artillery 2.0.21 posts a "test run" event to PostHog on every run, even with
    # ARTILLERY_DISABLE_TELEMETRY; the preload replaces that client with one that sends nothing.
    return [NODE, "--require", str(HERE / "no-telemetry.cjs"), str(ART_BIN), "run",
            "-t", f"http://127.0.0.1:{server.port}/chat", "--quiet", "--output", str(out), str(HERE / yml)]


def wsstorm_cmd(wsstorm, server, toml, out, *extra):
    return [str(wsstorm), "run", str(HERE / toml), "--target", f"ws://127.0.0.1:{server.port}",
            "--out", str(out), "--quiet", *extra]


# ---- checks and figures of each run ---------------------------------------------------------------
def check_server(problems, label, d, conns):
    if d["connects"] != conns:
        problems.append(f"{label}: the server counted {d['connects']} connects, not {conns}")
    if d["deflate_offered"]:
        problems.append(f"{label}: {d['deflate_offered']} upgrades offered permessage-deflate")
    if d["upgrades"] != d["connects"]:
        problems.append(f"{label}: {d['upgrades']} WebSocket upgrades for {d['connects']} connects")
    bad = {k: v for k, v in d["disconnects"].items() if "ping" in k}
    if bad:
        problems.append(f"{label}: disconnects {bad}")
    if d["open_after"]:
        problems.append(f"{label}: {d['open_after']} sessions still open on the server after the run")


def run_a(tool, i, run_dir, server, wsstorm, clients, problems):
    name = f"a-{tool}-{i}"
    log(f"A run {i}/{RUNS}: {tool}, {clients} connections, {A_DURATION}s")
    if tool == "wsstorm":
        m, d, samples = measured(run_dir, server, name, A_DURATION + 60,
                                 wsstorm_cmd(wsstorm, server, "closed-loop.toml", run_dir / name,
                                             "--duration", f"{A_DURATION}s"))
        s = json.load(open(run_dir / name / "summary.json"))
        c = s["counts"]
        acks, sent = c["answered"], c["requests"]
        rtt_p50, rtt_mean = s["latency"]["rtt"]["p50_ms"], s["latency"]["rtt"]["mean_ms"]
        bad = {k: c[k] for k in ("timeouts", "lost", "unmatched", "duplicate", "drops", "connect_errors",
                                 "check_failures", "late") if c[k]}
        if c["connects"] != clients or bad:
            problems.append(f"A wsstorm run {i}: connects={c['connects']} {bad}")
    else:
        out = run_dir / f"{name}.report.json"
        m, d, samples = measured(run_dir, server, name, A_DURATION + 60,
                                 artillery_cmd(server, "closed-loop.yml", out),
                                 env={**ART_ENV, "DURATION_S": str(A_DURATION)})
        r = json.load(open(out))["aggregate"]
        c = r["counters"]
        rt = r["summaries"].get("socketio.response_time", {})
        acks, sent = rt.get("count", 0), c.get("socketio.emit", 0)
        rtt_p50, rtt_mean = rt.get("p50"), rt.get("mean")
        errors = {k: v for k, v in c.items() if k.startswith("errors.")}
        if (c.get("vusers.created") != clients or c.get("vusers.completed") != clients
                or c.get("vusers.failed") or errors or sent != acks):
            problems.append(f"A artillery run {i}: vusers created={c.get('vusers.created')} "
                            f"completed={c.get('vusers.completed')} failed={c.get('vusers.failed')} "
                            f"emits={sent} acks={acks} {errors}")
    if m["exit_code"] != 0 or m["killed"]:
        problems.append(f"A {tool} run {i}: exit={m['exit_code']} killed={m['killed']}")
    check_server(problems, f"A {tool} run {i}", d, clients)
    # Every ack the tool counted was returned by the server; the server may have returned up to
    # one per connection more (in flight when the tool stopped).
    if not 0 <= d["acks"] - acks <= clients:
        problems.append(f"A {tool} run {i}: the tool counted {acks} acks, the server returned {d['acks']}")
    st = steady(samples, clients)
    if st is None:
        problems.append(f"A {tool} run {i}: no steady load window of 3 s or more")
    return {"acks": acks, "emits": sent, "server_acks": d["acks"], "cpu_s": m["cpu_s"],
            "wall_s": m["wall_s"], "us_per_ack_whole": m["cpu_s"] * 1e6 / acks if acks else None,
            "rtt_p50_ms": rtt_p50, "rtt_mean_ms": rtt_mean, "steady": st,
            # Little's law: acks in flight = ack rate x mean rtt; one per connection in a closed loop
            "in_flight": st["acks_per_s"] * rtt_mean / 1000 if st and rtt_mean else None}


def run_b(tool, i, run_dir, server, wsstorm, conns, problems):
    """One B run: `conns` connections (1: the baseline). Returns the peak RSS held, KiB."""
    base = conns == 1
    name = f"b-{tool}-{'base' if base else conns}-{i}"
    ramp, hold = (0, BASE_HOLD) if base else (B_RAMP, B_HOLD)
    log(f"B run {i}/{RUNS}: {tool}, {conns} idle connection{'s' if conns > 1 else ''} "
        f"(ramp {ramp}s, hold {hold}s)")
    sample = ("--count-sockets", "--port", str(server.port), "--interval", "0.25", "--hold-sockets", str(conns))
    if tool == "wsstorm":
        m, d, _ = measured(run_dir, server, name, ramp + hold + 60,
                           wsstorm_cmd(wsstorm, server, "idle.toml", run_dir / name,
                                       "--set", f"phases.0.clients={conns}", "--set", f"phases.0.ramp={ramp}s",
                                       "--set", f"phases.0.hold={hold}s", "--duration", f"{ramp + hold}s"),
                           measure_opts=sample)
        c = json.load(open(run_dir / name / "summary.json"))["counts"]
        if c["connects"] != conns or c["connect_errors"] or c["drops"]:
            problems.append(f"B wsstorm {conns} run {i}: connects={c['connects']} "
                            f"connect_errors={c['connect_errors']} drops={c['drops']}")
    else:
        out = run_dir / f"{name}.report.json"
        # Arrivals spread over max(ramp, 1) s, each VU holding its connection ramp + hold s: all
        # are held together for `hold` s.
        m, d, _ = measured(run_dir, server, name, ramp + hold + 60,
                           artillery_cmd(server, "idle.yml", out),
                           env={**ART_ENV, "CONNS": str(conns), "RAMP_S": str(max(ramp, 1)),
                                "THINK_S": str(max(ramp, 1) + hold)},
                           measure_opts=sample)
        c = json.load(open(out))["aggregate"]["counters"]
        errors = {k: v for k, v in c.items() if k.startswith("errors.")}
        if c.get("vusers.created") != conns or c.get("vusers.completed") != conns or c.get("vusers.failed") or errors:
            problems.append(f"B artillery {conns} run {i}: vusers created={c.get('vusers.created')} "
                            f"completed={c.get('vusers.completed')} failed={c.get('vusers.failed')} {errors}")
    if m["exit_code"] != 0 or m["killed"] or m["held_hwm_kib"] is None:
        problems.append(f"B {tool} {conns} run {i}: exit={m['exit_code']} killed={m['killed']} "
                        f"held {m['max_sockets']} of {conns} connections at most")
    check_server(problems, f"B {tool} {conns} run {i}", d, conns)
    return {"held_hwm_kib": m["held_hwm_kib"], "held_rss_kib": m["held_rss_kib"],
            "held_samples": m["held_samples"], "cpu_s": m["cpu_s"]}


# ---- the table ------------------------------------------------------------------------------------
def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def cell(vals, digits):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    m = statistics.median(vals)
    if len(vals) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ({min(vals):.{digits}f}–{max(vals):.{digits}f})"


def table(meta, res, problems):
    lines = []
    add = lines.append
    add(f"{meta['date']}, {meta['machine']}")
    add(f"wsstorm: {meta['wsstorm']}; Artillery {meta['artillery']} (socket.io-client {meta['socket.io-client']}, "
        f"{meta['node']}); server: python-socketio {meta['python-socketio']}, python-engineio "
        f"{meta['python-engineio']}, aiohttp {meta['aiohttp']}, {meta['python']}")
    add(f"RUNS={RUNS}; A: {meta['a_clients']} connections, {A_DURATION} s; B: {B_CONNS} connections "
        f"(ramp {B_RAMP} s, hold {B_HOLD} s) vs 1 (held {BASE_HOLD} s); Engine.IO ping every {PING_INTERVAL} s; "
        f"generator on CPU {GEN_CPU}, server on CPU {SERVER_CPU}")
    add("Medians, with (min–max) of the runs. Ratio: Artillery / wsstorm.")
    add("")
    add("| | wsstorm | Artillery | ratio |")
    add("|---|---|---|---|")

    def row(label, key_fn, digits, ratio=True):
        vals = {t: [key_fn(r) for r in res[t]] for t in TOOLS}
        mw, ma = med(vals["wsstorm"]), med(vals["artillery"])
        rat = f"{ma / mw:.1f}×" if ratio and mw and ma else ""
        add(f"| {label} | {cell(vals['wsstorm'], digits)} | {cell(vals['artillery'], digits)} | {rat} |")

    st = lambda k: (lambda r: r["a"]["steady"][k] if r["a"]["steady"] else None)
    row("**A. CPU µs per ack round trip, steady state**", st("us_per_ack"), 1)
    row("A. CPU µs per ack, whole process (start-up included)", lambda r: r["a"]["us_per_ack_whole"], 1)
    row("A. acks counted by the tool (= server's)", lambda r: r["a"]["acks"], 0, ratio=False)
    row("A. acks/s in the steady window (server count)", st("acks_per_s"), 0)
    row("A. ack rtt p50, ms (tool's own)", lambda r: r["a"]["rtt_p50_ms"], 2)
    row("A. acks in flight (acks/s × mean rtt; 50 = one per connection)", lambda r: r["a"]["in_flight"], 1,
        ratio=False)
    row("A. generator CPU in the window, % of one CPU", st("gen_cpu_pct"), 0, ratio=False)
    row("A. server CPU in the window, % of one CPU", st("srv_cpu_pct"), 0, ratio=False)
    row("A. generator CPU time, whole process, s", lambda r: r["a"]["cpu_s"], 2)
    row("A. other processes' CPU in the window, % of one CPU", st("others_pct"), 1, ratio=False)
    row(f"**B. KiB per idle connection** ((peak {B_CONNS} − peak 1) / {B_CONNS - 1})",
        lambda r: r["b_per_conn_kib"], 1)
    row(f"B. peak RSS holding {B_CONNS}, MiB", lambda r: r["b_full"]["held_hwm_kib"] / 1024
        if r["b_full"]["held_hwm_kib"] else None, 1)
    row("B. peak RSS holding 1, MiB", lambda r: r["b_base"]["held_hwm_kib"] / 1024
        if r["b_base"]["held_hwm_kib"] else None, 1)
    add("")
    noisy = [f"{t} run {k + 1}" for t in TOOLS for k, r in enumerate(res[t])
             if r["a"]["steady"] and r["a"]["steady"]["others_pct"] > 5]
    if noisy:
        add(f"warning: other processes used over 5 % of a CPU during A ({', '.join(noisy)}): "
            "those CPU figures may be skewed")
    for t in TOOLS:
        add(f"raw {t}: " + "; ".join(
            f"run {k + 1}: A {r['a']['acks']} acks (server {r['a']['server_acks']}), "
            f"{r['a']['cpu_s']:.2f} s CPU, steady {fmt(r['a']['steady'], 'us_per_ack')} µs/ack; "
            f"B peak {r['b_full']['held_hwm_kib']} − {r['b_base']['held_hwm_kib']} KiB"
            for k, r in enumerate(res[t])))
    if problems:
        add("")
        add("CHECKS FAILED:")
        lines.extend(f"- {p}" for p in problems)
    else:
        add("checks: every run exited normally; acks counted by each tool = acks the server returned "
            "(wsstorm: up to one per connection in flight at the stop); every connection opened, held and "
            "closed without a drop or ping timeout; no permessage-deflate offered.")
    return "\n".join(lines) + "\n"


def fmt(st, key):
    return f"{st[key]:.1f}" if st and st.get(key) is not None else "n/a"


# ---- main -----------------------------------------------------------------------------------------
def versions(wsstorm, built_at):
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"

    pkg = lambda name: json.load(open(HERE / "node_modules" / name / "package.json"))["version"]
    py = json.loads(out([SIO_PYTHON, "-c",
                         "import json, sys, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
                         "('python-socketio', 'python-engineio', 'aiohttp')} | {'python': sys.version.split()[0]}))"]))
    sha = out(["sha256sum", str(wsstorm)]).split()[0][:12]
    if built_at:
        origin = f"built from commit {built_at[0]}{' + uncommitted changes' if built_at[1] else ''}"
    else:
        origin = f"the binary given by WSSTORM={os.environ['WSSTORM']}"
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    return {
        "wsstorm": f"{out([str(wsstorm), '--version'])} ({origin}, sha256 {sha})",
        "artillery": pkg("artillery"),
        "socket.io-client": pkg("socket.io-client"),
        "node": f"Node {out([NODE, '--version'])}",
        "python-socketio": py["python-socketio"], "python-engineio": py["python-engineio"],
        "aiohttp": py["aiohttp"], "python": f"Python {py['python']}",
        "machine": f"{os.cpu_count()} vCPU ({model}), {mem / 1048576:.1f} GiB RAM, Linux {os.uname().release}",
    }


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for tool in ("taskset", "timeout", NODE):
        if not shutil.which(tool):
            die(f"{tool} is needed")
    if (os.cpu_count() or 1) < 2:
        log("warning: fewer than 2 CPUs: the generator and the server share one")
    if not Path(SIO_PYTHON).exists():
        die(f"no python with python-socketio at {SIO_PYTHON} (set SIO_PYTHON, or: python3 -m venv target/ci-venv "
            "&& target/ci-venv/bin/pip install -r tests/requirements.txt)")
    if not ART_BIN.exists():
        log("installing Artillery: npm ci --ignore-scripts --prefix bench/artillery")
        subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", str(HERE)],
                       check=True, timeout=900, stdout=sys.stderr)

    # Both tools must run the same shape: the connection count is in both A files.
    toml_clients = int(re.search(r"^clients\s*=\s*(\d+)", (HERE / "closed-loop.toml").read_text(), re.M)[1])
    yml_clients = int(re.search(r"arrivalCount:\s*(\d+)", (HERE / "closed-loop.yml").read_text())[1])
    if toml_clients != yml_clients:
        die(f"closed-loop.toml has {toml_clients} clients, closed-loop.yml {yml_clients} arrivals")
    clients = toml_clients

    need = B_CONNS + 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            die(f"B needs {need} open files but the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    wsstorm, built_at = os.environ.get("WSSTORM"), None
    if not wsstorm:
        git = lambda *a: subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()
        built_at = (git("rev-parse", "--short", "HEAD"),
                    bool(git("status", "--porcelain", "--untracked-files=no", "--", "src", "Cargo.toml", "Cargo.lock")))
        log("building wsstorm (cargo build --release)")
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True, stdout=sys.stderr)
        wsstorm = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "wsstorm"
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    run_dir = CACHE / "artillery" / stamp
    run_dir.mkdir(parents=True)
    # A private copy, so a rebuild in the (shared) target directory cannot change it mid-run.
    shutil.copy2(wsstorm, run_dir / "wsstorm")
    wsstorm = run_dir / "wsstorm"

    meta = versions(wsstorm, built_at) | {"date": time.strftime("%Y-%m-%d", time.gmtime()), "stamp": stamp,
                                "runs": RUNS, "a_clients": clients, "a_duration": A_DURATION,
                                "b_conns": B_CONNS, "b_ramp": B_RAMP, "b_hold": B_HOLD, "base_hold": BASE_HOLD,
                                "gen_cpu": GEN_CPU, "server_cpu": SERVER_CPU, "ping_interval": PING_INTERVAL}
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=1))
    for f in ("closed-loop.toml", "idle.toml"):
        r = subprocess.run([str(wsstorm), "validate", str(HERE / f), "--target", "ws://127.0.0.1:9"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            die(f"wsstorm validate rejected bench/artillery/{f}: {r.stderr or r.stdout}")

    per_rep = 2 * (A_DURATION + 60) + 2 * (BASE_HOLD + 60) + 2 * (B_RAMP + B_HOLD + 80)
    lifetime = 120 + RUNS * per_rep
    server = Server(run_dir, lifetime)
    log(f"server: python-socketio on 127.0.0.1:{server.port}, CPU {SERVER_CPU}, pid {server.pid} "
        f"(at most {lifetime} s); raw data in {run_dir}")

    problems = []
    res = {t: [] for t in TOOLS}
    try:
        for i in range(1, RUNS + 1):
            order = TOOLS if i % 2 else TOOLS[::-1]
            rep = {t: {} for t in TOOLS}
            for t in order:
                rep[t]["a"] = run_a(t, i, run_dir, server, wsstorm, clients, problems)
            for t in order:
                rep[t]["b_base"] = run_b(t, i, run_dir, server, wsstorm, 1, problems)
                rep[t]["b_full"] = run_b(t, i, run_dir, server, wsstorm, B_CONNS, problems)
                full, base = rep[t]["b_full"]["held_hwm_kib"], rep[t]["b_base"]["held_hwm_kib"]
                rep[t]["b_per_conn_kib"] = (full - base) / (B_CONNS - 1) if full and base else None
            for t in TOOLS:
                res[t].append(rep[t])
            (run_dir / "results.json").write_text(json.dumps(res, indent=1))
    finally:
        stop_all()
    (run_dir / "server-final.txt").write_text(server.log_path.read_text())

    text = table(meta, res, problems)
    (run_dir / "results.md").write_text(text)
    shutil.copy(run_dir / "results.md", CACHE / "artillery-last-results.md")
    if os.environ.get("MARKDOWN"):
        Path(os.environ["MARKDOWN"]).write_text(text)
    print()
    print(text, end="")
    print(f"(also in {CACHE / 'artillery-last-results.md'}; raw data in {run_dir})")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
