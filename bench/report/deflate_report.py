#!/usr/bin/env python3
"""Workload A for wsstorm, plain and with permessage-deflate (AZ), from one bench/run.sh
results directory (`WORKLOADS="A AZ"`, or either alone).

usage: deflate_report.py RUN_DIR

For each repetition i: a-wsstorm-i.json / az-wsstorm-i.json (measure.py) and their --out
directories (summary.json). Prints the CPU per round trip (the generator's user + sys time over
the round trips it completed), round trips per second, the medians with min–max, and for AZ the
connections that negotiated deflate and the bytes on the wire against the messages' bytes.
Exits 1 when a run had errors.
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
    print(f"A / AZ. CPU per correlated round trip, wsstorm: {meta['a_clients']} connections closed loop, "
          f"{meta['a_duration']} s per run; {meta['cpu_model']} ({meta['nproc']} CPUs), generator on CPU "
          f"{meta['gen_cpu']}, echo server (wsstorm serve) on CPU {meta['server_cpu']}; {meta['wsstorm_version']}")
    print()
    print(f"{'':<28}{'CPU/round trip (µs)':>20}{'min–max':>16}{'round trips/s':>15}   runs (CPU µs)")
    for kind, label in (("a", "A (uncompressed)"), ("az", "AZ (permessage-deflate)")):
        rows = []
        wire = []
        for i in range(1, runs + 1):
            name = f"{kind}-wsstorm-{i}"
            if not os.path.exists(os.path.join(run_dir, f"{name}.json")):
                continue
            m = load(os.path.join(run_dir, f"{name}.json"))
            s = load(os.path.join(run_dir, name, "summary.json"))
            c = s["counts"]
            bad = {k: c[k] for k in ("timeouts", "lost", "drops", "connect_errors") if c[k]}
            negotiated = c.get("deflate_connects", 0)
            if kind == "az" and negotiated != c["connects"]:
                bad["deflate_connects"] = f"{negotiated} of {c['connects']}"
            if bad or m["exit_code"] != 0 or m["killed"]:
                problems.append(f"{name}: exit={m['exit_code']} killed={m['killed']} {bad}")
            rts = c["answered"]
            rows.append({
                "cpu_us": m["cpu_s"] * 1e6 / rts if rts else float("nan"),
                "rate": rts / s["elapsed_s"],
            })
            if kind == "az" and c.get("deflate_bytes_sent"):
                wire.append((c["wire_bytes_sent"] / c["deflate_bytes_sent"],
                             c["wire_bytes_received"] / c["deflate_bytes_received"]))
        if not rows:
            continue
        cpus = [r["cpu_us"] for r in rows]
        runs_text = "  ".join(f"{v:.2f}" for v in cpus)
        print(f"{label:<28}{statistics.median(cpus):>20.2f}{min(cpus):>9.2f}–{max(cpus):<6.2f}"
              f"{statistics.median(r['rate'] for r in rows):>15.0f}   {runs_text}")
        if wire:
            sent = statistics.median(w[0] for w in wire)
            received = statistics.median(w[1] for w in wire)
            print(f"{'':<28}on the wire: {100 * sent:.1f} % of the bytes sent, {100 * received:.1f} % "
                  f"of the bytes received (median)")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
