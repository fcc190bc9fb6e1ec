#!/usr/bin/env python3
"""The chaos proxy's overhead from one `WORKLOADS=P bench/run.sh` results directory.

usage: proxy_report.py RUN_DIR

For each repetition i and shape (saturated: no think time; paced: 10 ms think time):
p-SHAPE-direct-i.json / p-SHAPE-proxy-i.json (measure.py) and their --out directories
(summary.json). Prints rtt p50 and CPU per round trip of wsstorm (generator + in-process proxy)
both ways, the medians and the added cost. Exits 1 when a run had errors.
"""

import json
import os
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def main():
    run_dir = sys.argv[1]
    meta = load(os.path.join(run_dir, "meta.json"))
    runs = int(meta["runs"])
    problems = []
    print(f"P. chaos proxy overhead: {meta['a_clients']} connections closed loop, {meta['a_duration']} s per run, "
          f"{runs} runs of each, alternating; {meta['cpu_model']}, generator (and proxy) on CPU "
          f"{meta['gen_cpu']}, echo server on CPU {meta['server_cpu']}")
    for shape in ("saturated", "paced"):
        rows = {"direct": [], "proxy": []}
        for i in range(1, runs + 1):
            for via in rows:
                name = f"p-{shape}-{via}-{i}"
                m = load(os.path.join(run_dir, f"{name}.json"))
                s = load(os.path.join(run_dir, name, "summary.json"))
                c = s["counts"]
                bad = {k: c[k] for k in ("timeouts", "lost", "drops", "connect_errors") if c[k]}
                if bad or m["exit_code"] != 0 or m["killed"] or (via == "proxy") != ("proxy" in s):
                    problems.append(f"{name}: exit={m['exit_code']} killed={m['killed']} {bad}")
                rts = c["answered"]
                rows[via].append({
                    "p50_us": s["latency"]["rtt"]["p50_ms"] * 1000,
                    "cpu_us": m["cpu_s"] * 1e6 / rts if rts else float("nan"),
                    "rate": rts / s["elapsed_s"],
                })
        med = {via: {k: statistics.median(r[k] for r in rs) for k in ("p50_us", "cpu_us", "rate")}
               for via, rs in rows.items()}
        think = "no think time" if shape == "saturated" else "10 ms think time"
        print()
        print(f"{shape} ({think}){'':<4}{'rtt p50 (µs)':>14}{'CPU/round trip (µs)':>22}{'round trips/s':>16}   runs (p50 µs / CPU µs)")
        for via, label in (("direct", "  direct"), ("proxy", "  through the proxy")):
            runs_text = "  ".join(f"{r['p50_us']:.0f}/{r['cpu_us']:.2f}" for r in rows[via])
            m = med[via]
            print(f"{label:<30}{m['p50_us']:>10.0f}{m['cpu_us']:>22.2f}{m['rate']:>16.0f}   {runs_text}")
        added_p50 = med["proxy"]["p50_us"] - med["direct"]["p50_us"]
        added_cpu = 100 * (med["proxy"]["cpu_us"] / med["direct"]["cpu_us"] - 1)
        print(f"  added by the proxy: rtt p50 {added_p50:+.0f} µs (target < 30), "
              f"CPU per round trip {added_cpu:+.0f} % (target < 25)")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
