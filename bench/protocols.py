#!/usr/bin/env python3
"""CPU per correlated round trip, per application protocol, against the built-in target.

Workload A's shape (bench/scenarios/closed-loop.toml: 50 connections, one request in flight
each, no think time) in each protocol the presets speak, against `wsstorm serve --protocol P`
(pinned to SERVER_CPU), the generator pinned to GEN_CPU:

- json: workload A itself (bare JSON, the reply matched by /request_id);
- socketio: `emit` with `ack = true` (42<id>[...] -> 43<id>[...]);
- stomp: `publish` with a receipt (SEND -> RECEIPT), no subscription;
- jsonrpc: `call` of the target's `echo` method.

The protocols take turns within each repetition, so drift on the machine falls on all alike.
The figure is the generator's user + sys CPU time (wait4's rusage) over the round trips it
completed (summary.json's counts.answered), in µs. Prints a table of medians with min-max,
and writes every raw run to bench/.cache/protocols/<UTC timestamp>/runs.json.

    python3 bench/protocols.py [--runs 3] [--duration 10] [--wsstorm target/release/wsstorm]
        [--only json,stomp]

Everything runs on 127.0.0.1, each run bounded by its --duration (and a deadline of twice it
plus 30 s, after which it is killed by its PID).
"""

import argparse
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import time

BENCH = pathlib.Path(__file__).resolve().parent
ROOT = BENCH.parent

COMMON = """name = "bench-{name}"
target = "ws://127.0.0.1:9/"
duration = "10s"
[connect]
timeout = "5s"
{connect}
[correlation]
timeout = "2s"
[[phases]]
clients = 50
[[steps]]
{step}
"""

TEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"

PROTOCOLS = {
    "json": (None, "", ""),
    "socketio": (
        "socketio",
        'protocol = "socketio"',
        f'emit = ["Request", {{ text = "{TEXT}" }}]\nack = true',
    ),
    "stomp": (
        "stomp",
        'protocol = "stomp"\n[connect.stomp]\nheart_beat = [0, 0]',
        f'publish = {{ destination = "/queue/bench", body = {{ type = "Request", text = "{TEXT}" }} }}',
    ),
    "jsonrpc": (
        "jsonrpc",
        'protocol = "jsonrpc"',
        f'call = {{ method = "echo", params = [{{ type = "Request", text = "{TEXT}" }}] }}',
    ),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario(name, out_dir):
    protocol, connect, step = PROTOCOLS[name]
    if protocol is None:
        return BENCH / "scenarios" / "closed-loop.toml"
    path = out_dir / f"{name}.toml"
    text = COMMON.format(name=name, connect=connect, step=step)
    path.write_text(text)
    return path


def run_once(args, name, path, port, out):
    """One generator run against a fresh server of that protocol; (cpu_s, answered)."""
    protocol = PROTOCOLS[name][0]
    serve = ["taskset", "-c", args.server_cpu, args.wsstorm, "serve", "--listen", f"127.0.0.1:{port}"]
    if protocol:
        serve += ["--protocol", protocol]
    server = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        gen = subprocess.Popen(
            ["taskset", "-c", args.gen_cpu, args.wsstorm, "run", str(path), "--target",
             f"ws://127.0.0.1:{port}/", "--duration", f"{args.duration}s", "--out", str(out), "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 2 * args.duration + 30
        while True:
            pid, status, usage = os.wait4(gen.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                gen.kill()
                pid, status, usage = os.wait4(gen.pid, 0)
                break
            time.sleep(0.1)
        gen.returncode = os.waitstatus_to_exitcode(status)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    summary = json.loads((out / "summary.json").read_text())
    return usage.ru_utime + usage.ru_stime, summary["counts"]["answered"], summary["counts"]["timeouts"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--wsstorm", default=str(ROOT / "target/release/wsstorm"))
    p.add_argument("--only", default=",".join(PROTOCOLS))
    p.add_argument("--gen-cpu", default=os.environ.get("GEN_CPU", "0"))
    p.add_argument("--server-cpu", default=os.environ.get("SERVER_CPU", "1"))
    args = p.parse_args()
    names = [n for n in args.only.split(",") if n]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir = ROOT / "bench" / ".cache" / "protocols" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {n: scenario(n, out_dir) for n in names}
    for n, path in paths.items():
        subprocess.run([args.wsstorm, "validate", str(path)], check=True, stdout=subprocess.DEVNULL)
    runs = []
    for i in range(args.runs):
        for n in names:
            cpu, answered, timeouts = run_once(args, n, paths[n], free_port(), out_dir / f"{n}-{i + 1}")
            us = cpu / answered * 1e6 if answered else float("nan")
            runs.append({"protocol": n, "run": i + 1, "cpu_s": cpu, "answered": answered,
                         "timeouts": timeouts, "us_per_rt": us})
            print(f"run {i + 1}/{args.runs} {n:9} {answered:8} round trips, {cpu:6.2f} s CPU, {us:6.2f} µs each")
    (out_dir / "runs.json").write_text(json.dumps(runs, indent=1))
    print(f"\nCPU per correlated round trip (µs; median of {args.runs}, min-max), "
          f"{os.cpu_count()} CPUs, generator on CPU {args.gen_cpu}, server on CPU {args.server_cpu}")
    base = None
    for n in names:
        us = [r["us_per_rt"] for r in runs if r["protocol"] == n]
        med = statistics.median(us)
        base = base or med
        print(f"  {n:9} {med:6.2f}  ({min(us):.2f}-{max(us):.2f})  x{med / base:.2f} of {names[0]}")
    print(f"raw runs: {out_dir / 'runs.json'}")


if __name__ == "__main__":
    main()
