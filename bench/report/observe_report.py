#!/usr/bin/env python3
"""The table of one bench/observe.sh run: RUN_DIR holds meta.json and, per variant and
repetition, measure.py's NAME.json, the run's NAME/summary.json, NAME.prom-ticks and
Prometheus' NAME.prom-samples.json and NAME.prom-scrape.json.

usage: observe_report.py RUN_DIR
"""

import json
import os
import sys

from report import fmt as f, med, minmax as rng

run_dir = sys.argv[1]


def load(name):
    with open(os.path.join(run_dir, name)) as fh:
        return json.load(fh)


def exists(name):
    return os.path.exists(os.path.join(run_dir, name))


meta = load("meta.json")
runs, hz = int(meta["runs"]), int(meta["clk_tck"])
gen_cpu, srv_cpu = str(meta["gen_cpu"]), str(meta["server_cpu"])
problems, warnings, out = [], [], []
def prom_samples(name):
    """Samples Prometheus holds of a run: (scraped, remote-written)."""
    if not exists(f"{name}.prom-samples.json"):
        return None, None
    try:
        res = load(f"{name}.prom-samples.json")["data"]["result"]
    except (ValueError, KeyError, TypeError):
        return None, None
    scraped = sum(int(r["value"][1]) for r in res if r["metric"].get("job") == "wsstorm")
    written = sum(int(r["value"][1]) for r in res if "job" not in r["metric"])
    return scraped, written
def samples_per_scrape(name):
    try:
        res = load(f"{name}.prom-scrape.json")["data"]["result"]
        return int(float(res[0]["value"][1])) if res else None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
def prom_pct(name, wall):
    try:
        with open(os.path.join(run_dir, f"{name}.prom-ticks")) as fh:
            return 100 * int(fh.read().strip()) / hz / wall
    except (OSError, ValueError):
        return None
def live_check(label, name, v, s, expect_s):
    """The export's own report in summary.json, and what Prometheus got."""
    if v == "plain":
        if s.get("live_metrics"):
            problems.append(f"{label}: a plain run exported ({s['live_metrics']})")
        return
    live = s.get("live_metrics") or {}
    rw = live.get("remote_write")
    if v in ("rw", "export"):
        if not rw or rw.get("samples_sent", 0) == 0 or rw.get("samples_dropped") or rw.get("requests_failed"):
            problems.append(f"{label}: remote write {rw}")
    scraped, written = prom_samples(name)
    want = max(1, expect_s - 3)
    if v in ("listen", "export") and meta["scraper"] == "prometheus" and (scraped or 0) < want:
        problems.append(f"{label}: Prometheus scraped {scraped} samples of wsstorm_answered_total, expected >= {want}")
    if v in ("rw", "export") and (written or 0) < want:
        problems.append(f"{label}: Prometheus holds {written} remote-written samples of wsstorm_answered_total, expected >= {want}")

names = {"plain": "plain", "listen": "--metrics-listen, scraped every 1 s",
         "rw": "--metrics-out prometheus-rw, every 1 s", "export": "--metrics-listen (scraped) + --metrics-out"}
out.append(f"wsstorm live export (issue 20): bench/observe.sh, {meta['started']}")
out.append(f"machine: {meta['nproc']} CPUs, {meta['cpu_model']}, Linux {meta['kernel']}, {meta['mem']}")
out.append(f"{meta['wsstorm_version']}, git {meta['git']}; {meta['prometheus_version']}")
out.append(f"generator on CPU {meta['gen_cpu']}, echo server on CPU {meta['server_cpu']}, Prometheus"
           f"{' and curl' if meta['scraper'] == 'curl' else ''} on CPU {meta['aux_cpu']}; scraper: {meta['scraper']}; "
           f"RUNS={runs}; medians [min–max]")

if " A " in f" {meta['workloads']} ":
    a = {v: {"us": [], "rate": [], "srv": [], "gen_other": [], "prom": [], "spm": []} for v in ("plain", "listen", "rw")}
    for v in a:
        for i in range(1, runs + 1):
            name = f"a-{v}-{i}"
            m, s = load(f"{name}.json"), load(f"{name}/summary.json")
            c = s["counts"]
            rts = c["answered"]
            bad = {k: c[k] for k in ("timeouts", "lost", "unmatched", "duplicate", "drops", "connect_errors") if c[k]}
            if c["connects"] != int(meta["a_clients"]) or bad or m["exit_code"] != 0 or m["killed"]:
                problems.append(f"A {v} run {i}: connects={c['connects']} exit={m['exit_code']} killed={m['killed']} {bad}")
            live_check(f"A {v} run {i}", name, v, s, int(meta["a_duration"]))
            a[v]["us"].append(m["cpu_s"] * 1e6 / rts if rts else None)
            a[v]["rate"].append(rts / s["elapsed_s"] if rts else None)
            cpus, wall = m.get("cpus") or {}, m["wall_s"]
            g = cpus.get(gen_cpu)
            su, ss = m.get("other_pid_utime_s"), m.get("other_pid_stime_s")
            a[v]["srv"].append(100 * (su + ss) / wall if su is not None else None)
            other = max(0.0, 100 * (g["user"] + g["nice"] - m["utime_s"]) / wall) if g else None
            a[v]["gen_other"].append(other)
            if other is not None and other > 10:
                warnings.append(f"A {v} run {i}: other processes used {other:.0f} % of the generator's CPU (user)")
            a[v]["prom"].append(prom_pct(name, wall))
            a[v]["spm"].append(samples_per_scrape(name) if v == "listen" else None)
    base = med(a["plain"]["us"])
    out.append("")
    out.append(f"A. CPU per correlated round trip ({meta['a_clients']} connections, closed loop, "
               f"{meta['a_duration']} s per run): user + sys of wsstorm / answered")
    hdr = f"{'variant':<42} {'µs / rt':>7}  {'min–max':<11} {'× plain':>7}  {'paired × [min–max]':<21} {'rt/s':>7}  {'server CPU':>10}  {'Prometheus CPU':>14}"
    out.append(hdr)
    out.append("-" * len(hdr))
    verdict = []
    for v in ("plain", "listen", "rw"):
        us = a[v]["us"]
        ratio = med(us) / base if base and med(us) else None
        paired = [x / p if x and p else None for x, p in zip(us, a["plain"]["us"])]
        pr = "" if v == "plain" else f"{f(med(paired), 3)} [{rng(paired, 3)}]"
        out.append(f"{names[v]:<42} {f(med(us), 2):>7}  {rng(us, 2):<11} {f(ratio, 3):>7}  {pr:<21} "
                   f"{f(med(a[v]['rate']), 0):>7}  {f(med(a[v]['srv']), 0) + ' %':>10}  {f(med(a[v]['prom']), 1) + ' %':>14}")
        if v != "plain" and ratio is not None:
            verdict.append(f"{v}: {100 * (ratio - 1):+.1f} % ({'within' if ratio <= 1.05 else 'OVER'} the 5 % budget)")
    for v in ("plain", "listen", "rw"):
        out.append(f"  raw µs / rt, {v:<6} (repetition 1..{runs}): " + ", ".join(f(x, 2) for x in a[v]["us"])
                   + "   others' user time on the generator's CPU: " + ", ".join(f(x, 0) + " %" for x in a[v]["gen_other"]))
    out.append("paired ×: each repetition's variant / the same repetition's plain run. "
               "server CPU, Prometheus CPU: % of one CPU over the run.")
    spm = med(a["listen"]["spm"])
    if spm:
        out.append(f"samples per scrape (Prometheus' scrape_samples_scraped): {spm}")
    out.append("budget (issue 20: within 5 % of plain): " + "; ".join(verdict))

if " B " in f" {meta['workloads']} ":
    n = int(meta["b_conns"])
    b = {v: {"per": [], "base": [], "full": [], "base_cpu": [], "base_wall": []} for v in ("plain", "export")}
    for v in b:
        for i in range(1, runs + 1):
            hb = hf = None
            for suffix, want, dur in ((f"base-{i}", 1, int(meta["base_duration"])),
                                      (f"{i}", n, int(meta["b_ramp"]) + int(meta["b_hold"]))):
                name = f"b-{v}-{suffix}"
                m, s = load(f"{name}.json"), load(f"{name}/summary.json")
                c = s["counts"]
                if m["held_hwm_kib"] is None or m["exit_code"] != 0 or m["killed"]:
                    problems.append(f"B {v} {name}: never held {want} connections (max {m['max_sockets']}), "
                                    f"exit={m['exit_code']} killed={m['killed']}")
                if c["connects"] != want or c["connect_errors"] or c["drops"]:
                    problems.append(f"B {name}: connects={c['connects']} errors={c['connect_errors']} drops={c['drops']}")
                live_check(f"B {name}", name, v, s, dur)
                if want == 1:
                    hb = m["held_hwm_kib"]
                    b[v]["base_cpu"].append(m["cpu_s"])
                    b[v]["base_wall"].append(m["wall_s"])
                else:
                    hf = m["held_hwm_kib"]
            b[v]["base"].append(hb / 1024 if hb else None)
            b[v]["full"].append(hf / 1024 if hf else None)
            b[v]["per"].append((hf - hb) / (n - 1) if hb and hf else None)
    out.append("")
    out.append(f"B. Memory per idle connection ({n} connections, ramp {meta['b_ramp']} s, hold {meta['b_hold']} s): "
               f"(peak RSS held with {n} − with 1) / {n - 1}")
    hdr = f"{'variant':<42} {'KiB / conn':>10}  {'min–max':<11} {'peak, 1 conn':>12}  {'peak, ' + str(n):>12}"
    out.append(hdr)
    out.append("-" * len(hdr))
    for v in ("plain", "export"):
        out.append(f"{names[v]:<42} {f(med(b[v]['per']), 2):>10}  {rng(b[v]['per'], 2):<11} "
                   f"{f(med(b[v]['base']), 2) + ' MiB':>12}  {f(med(b[v]['full']), 1) + ' MiB':>12}")
    for v in ("plain", "export"):
        out.append(f"  raw KiB / conn, {v:<6} (repetition 1..{runs}): " + ", ".join(f(x, 2) for x in b[v]["per"]))
    p, e = med(b["plain"]["per"]), med(b["export"]["per"])
    if p and e:
        out.append(f"export − plain: {e - p:+.2f} KiB per connection ({100 * (e / p - 1):+.1f} %); "
                   f"fixed cost (1-connection peak): {med(b['export']['base']) - med(b['plain']['base']):+.2f} MiB")
    # The export's own CPU, where nothing else moves: the 1-connection idle runs, export minus
    # plain in the same repetition, per second of the run (start-up and the final flush included).
    cost = [1e3 * (e - p) / w for e, p, w in zip(b["export"]["base_cpu"], b["plain"]["base_cpu"], b["export"]["base_wall"])]
    if cost and all(x is not None for x in cost):
        out.append(f"the export's own CPU (1-connection runs, export − plain, listen scraped + remote write): "
                   f"{med(cost):.2f} ms per second of run [{rng(cost, 2)}] = {med(cost) / 10:.2f} % of one CPU "
                   f"(plain: {1e3 * med(b['plain']['base_cpu']):.0f} ms, export: {1e3 * med(b['export']['base_cpu']):.0f} ms "
                   f"of CPU per {int(meta['base_duration'])} s run)")

if warnings:
    out.append("")
    out += ["warning: " + w for w in warnings]
if problems:
    out.append("")
    out += ["FAILED: " + p for p in problems]
print("\n".join(out))
sys.exit(1 if problems else 0)
