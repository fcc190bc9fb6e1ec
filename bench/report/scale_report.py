#!/usr/bin/env python3
"""The figures of one bench/scripts/scale.sh run: bench/report/scale_report.py bench/.cache/scale/<ts>."""

import csv
import json
import os
import re
import sys


def main(run):
    m = json.load(open(os.path.join(run, "measure.json")))
    s = json.load(open(os.path.join(run, "results", "summary.json")))
    rows = list(csv.DictReader(open(os.path.join(run, "results", "timeseries.csv"))))
    peak = s["peak_clients"]
    full = [float(r["elapsed_s"]) for r in rows if int(r["connected"]) >= peak]
    served, accepts = None, []
    for line in open(os.path.join(run, "server.log")):
        if line.startswith("served "):
            served = int(re.match(r"served (\d+) connections", line).group(1))
        stats = re.search(r"accepted\s+(\d+)", line)
        if stats:
            accepts.append(int(stats.group(1)))
    workers = len(os.listdir(os.path.join(run, "results", "workers")))
    c = s["counts"]
    print(f"scenario                 {s['scenario']}, {s['planned_duration_s']:.0f} s")
    print(f"clients asked            {peak}")
    print(f"worker processes         {workers} (plus the parent)")
    print(f"connected at the peak    {max(int(r['connected']) for r in rows)}")
    print(f"all connected at         {full[0]:.0f} s" if full else "all connected at         never")
    print(f"held all for             {len(full)} s" if full else "held all for             0 s")
    print(f"connects                 {c['connects']} (server: {served})")
    print(f"connect errors           {c['connect_errors']}  {s['connect_errors']}")
    print(f"drops                    {c['drops']}  {s['drops']}")
    print(f"heartbeat pongs          {s['latency'].get('ping_rtt', {}).get('count', 0)}")
    print(f"peak RSS, all processes  {m['max_tree_rss_kib'] / 1024 / 1024:.2f} GiB "
          f"({m['max_tree_rss_kib'] / max(peak, 1):.2f} KiB per client)")
    print(f"CPU (user+sys)           {m['cpu_s']:.1f} s over {m['wall_s']:.0f} s wall")
    print(f"server accepts per s     peak {max(accepts, default=0)} (1 s stats lines)")
    for r in s.get("recovery", [])[:1]:
        times = [x["connected_recovered_s"] for x in s["recovery"] if x["chaos"] == r["chaos"]]
        hit = sum(x["hit"] for x in s["recovery"] if x["chaos"] == r["chaos"])
        done = None if None in times else max(times)
        print(f"chaos {r['how']:<18} at {r['at_s']:.0f} s hit {hit}; 99 % connected again after "
              + (f"{done:.1f} s ({hit / done:.0f} reconnects/s on average)" if done else "never"))
    print(f"exit code                {m['exit_code']}  outcome {s['outcome']}")


if __name__ == "__main__":
    main(sys.argv[1])
