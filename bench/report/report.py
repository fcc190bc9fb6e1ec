#!/usr/bin/env python3
"""Turn one bench/run.sh results directory into the comparison table.

usage: report.py RUN_DIR [--markdown PATH] [--scale SCALE_RUN_DIR ...]

With --markdown, the same figures go to PATH as Markdown (docs/BENCHMARKS.md), with the
figures of bench/scripts/scale.sh runs given by --scale.

RUN_DIR holds, for each repetition i (1..RUNS):
  a-wsstorm-i.json   measure.py result of `wsstorm run closed-loop.toml`; a-wsstorm-i/ its --out
  a-k6-i.json        measure.py result of `k6 run closed-loop.js`; a-k6-i.summary.json
  b-wsstorm-base-i.json, b-wsstorm-i.json (+ their --out dirs)
  b-k6-base-i.json, b-k6-i.json (+ their summaries)
  c-wsstorm-i.json (+ c-wsstorm-i/), c-k6-i.json (+ c-k6-i.summary.json)
and meta.json (machine, versions, parameters). Prints the table and checks every run.
"""

import json
import os
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def fmt(v, digits):
    return "n/a" if v is None else f"{v:.{digits}f}"


def med(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def minmax(values, digits):
    vals = [v for v in values if v is not None]
    return f"{min(vals):.{digits}f}–{max(vals):.{digits}f}" if vals else "n/a"


def main():
    args = sys.argv[1:]
    run_dir = args.pop(0)
    markdown, scale_dirs = None, []
    while args:
        flag = args.pop(0)
        if flag == "--markdown":
            markdown = args.pop(0) or None
        elif flag == "--scale":
            while args and not args[0].startswith("--"):
                scale_dirs.append(args.pop(0))
        else:
            sys.exit(f"report.py: unknown argument {flag}")
    meta = load(os.path.join(run_dir, "meta.json"))
    runs = int(meta["runs"])
    a_clients = int(meta["a_clients"])
    b_conns = int(meta["b_conns"])
    problems = []   # a run is invalid: exit 1
    warnings = []   # the figures may be skewed

    def p(name):
        return os.path.join(run_dir, name)

    # ---- A: CPU per correlated round trip --------------------------------------------------
    a = {"wsstorm": [], "k6": []}
    a_rate = {"wsstorm": [], "k6": []}
    a_cpu = {"wsstorm": [], "k6": []}
    # Conditions of each A run. /proc/stat is tick-based and counts softirq time per CPU; a
    # process's time includes the softirq work that ran while it was on the CPU.
    a_core = {"wsstorm": [], "k6": []}        # generator CPU busy (all) per round trip, µs
    a_srv = {"wsstorm": [], "k6": []}         # echo server process, % of a CPU
    a_gen_other = {"wsstorm": [], "k6": []}   # user time of other processes on the generator's CPU, %
    a_srv_other = {"wsstorm": [], "k6": []}   # user time of other processes on the server's CPU, %
    gen_cpu, srv_cpu = str(meta["gen_cpu"]), str(meta["server_cpu"])

    def conditions(tool, m, rts):
        cpus, wall = m.get("cpus") or {}, m["wall_s"]
        su, ss = m.get("other_pid_utime_s"), m.get("other_pid_stime_s")
        g, sv = cpus.get(gen_cpu), cpus.get(srv_cpu)
        busy = lambda c: c["user"] + c["nice"] + c["system"] + c["irq"] + c["softirq"]
        a_core[tool].append(busy(g) * 1e6 / rts if g and rts else None)
        a_srv[tool].append(100 * (su + ss) / wall if su is not None else None)
        a_gen_other[tool].append(max(0.0, 100 * (g["user"] + g["nice"] - m["utime_s"]) / wall) if g else None)
        a_srv_other[tool].append(max(0.0, 100 * (sv["user"] + sv["nice"] - su) / wall) if sv and su is not None else None)

    for i in range(1, runs + 1):
        m = load(p(f"a-wsstorm-{i}.json"))
        s = load(p(f"a-wsstorm-{i}/summary.json"))
        c = s["counts"]
        rts = c["answered"]
        bad = {k: c[k] for k in ("timeouts", "lost", "unmatched", "duplicate", "drops", "connect_errors") if c[k]}
        if c["connects"] != a_clients or bad or m["exit_code"] not in (0,) or m["killed"]:
            problems.append(f"A wsstorm run {i}: connects={c['connects']} exit={m['exit_code']} killed={m['killed']} {bad}")
        a["wsstorm"].append(m["cpu_s"] * 1e6 / rts if rts else None)
        a_rate["wsstorm"].append(rts / s["elapsed_s"] if rts else None)
        a_cpu["wsstorm"].append(m["cpu_s"])
        conditions("wsstorm", m, rts)

        m = load(p(f"a-k6-{i}.json"))
        k = load(p(f"a-k6-{i}.summary.json"))["metrics"]
        count = lambda name: (k.get(name) or {}).get("values", {}).get("count", 0)
        rts = count("roundtrips")
        sessions = count("ws_sessions")
        if sessions != a_clients or count("mismatched") or count("ws_errors") or m["exit_code"] != 0 or m["killed"]:
            problems.append(
                f"A k6 run {i}: sessions={sessions} mismatched={count('mismatched')} "
                f"errors={count('ws_errors')} exit={m['exit_code']} killed={m['killed']}")
        a["k6"].append(m["cpu_s"] * 1e6 / rts if rts else None)
        a_rate["k6"].append((k.get("roundtrips") or {}).get("values", {}).get("rate"))
        a_cpu["k6"].append(m["cpu_s"])
        conditions("k6", m, rts)

    # ---- B: memory per idle connection -----------------------------------------------------
    b = {"wsstorm": [], "k6": []}
    b_peak = {"wsstorm": [], "k6": []}
    b_base = {"wsstorm": [], "k6": []}
    for tool in ("wsstorm", "k6"):
        for i in range(1, runs + 1):
            base = load(p(f"b-{tool}-base-{i}.json"))
            full = load(p(f"b-{tool}-{i}.json"))
            for label, m, want in (("baseline", base, 1), ("full", full, b_conns)):
                if m["held_hwm_kib"] is None or m["exit_code"] not in (0,) or m["killed"]:
                    problems.append(
                        f"B {tool} {label} run {i}: never held {want} connections "
                        f"(max {m['max_sockets']}), exit={m['exit_code']} killed={m['killed']}")
            if tool == "wsstorm":
                c = load(p(f"b-wsstorm-{i}/summary.json"))["counts"]
                if c["connects"] != b_conns or c["connect_errors"] or c["drops"]:
                    problems.append(f"B wsstorm run {i}: connects={c['connects']} errors={c['connect_errors']} drops={c['drops']}")
            else:
                k = load(p(f"b-k6-{i}.summary.json"))["metrics"]
                opened = (k.get("opened") or {}).get("values", {}).get("count", 0)
                errs = (k.get("ws_errors") or {}).get("values", {}).get("count", 0)
                if opened != b_conns or errs:
                    problems.append(f"B k6 run {i}: opened={opened} errors={errs}")
            hb, hf = base["held_hwm_kib"], full["held_hwm_kib"]
            b_base[tool].append(hb / 1024 if hb else None)
            b_peak[tool].append(hf / 1024 if hf else None)
            b[tool].append((hf - hb) / (b_conns - 1) if hb and hf else None)

    # ---- C: CPU per connect cycle ------------------------------------------------------------
    c_clients = int(meta.get("c_clients", 0))
    cc = {"wsstorm": [], "k6": []}
    c_rate = {"wsstorm": [], "k6": []}
    for i in range(1, runs + 1):
        m = load(p(f"c-wsstorm-{i}.json"))
        s = load(p(f"c-wsstorm-{i}/summary.json"))
        c = s["counts"]
        cycles = c["closes"]
        bad = {k: c[k] for k in ("timeouts", "lost", "unmatched", "drops", "connect_errors") if c[k]}
        if not cycles or bad or m["exit_code"] != 0 or m["killed"]:
            problems.append(f"C wsstorm run {i}: cycles={cycles} exit={m['exit_code']} killed={m['killed']} {bad}")
        cc["wsstorm"].append(m["cpu_s"] * 1e6 / cycles if cycles else None)
        c_rate["wsstorm"].append(cycles / s["elapsed_s"] if cycles else None)

        m = load(p(f"c-k6-{i}.json"))
        k = load(p(f"c-k6-{i}.summary.json"))["metrics"]
        count = lambda name: (k.get(name) or {}).get("values", {}).get("count", 0)
        cycles = count("cycles")
        if not cycles or count("mismatched") or count("ws_errors") or m["exit_code"] != 0 or m["killed"]:
            problems.append(
                f"C k6 run {i}: cycles={cycles} mismatched={count('mismatched')} "
                f"errors={count('ws_errors')} exit={m['exit_code']} killed={m['killed']}")
        cc["k6"].append(m["cpu_s"] * 1e6 / cycles if cycles else None)
        c_rate["k6"].append((k.get("cycles") or {}).get("values", {}).get("rate"))
    # Round trips per second of CPU time: what one core sustains.
    per_core = {t: [1e6 / v if v else None for v in a[t]] for t in ("wsstorm", "k6")}

    # ---- table -----------------------------------------------------------------------------
    lines = []
    out = lines.append
    out(f"wsstorm vs k6: {runs} runs each; median [raw values]")
    out("")

    def row(label, key_vals, digits, ratio=True, target=""):
        ws, k6 = key_vals["wsstorm"], key_vals["k6"]
        mw, mk = med(ws), med(k6)
        raw = lambda vs: " ".join(fmt(v, digits) for v in vs)
        r = f"{mk / mw:.1f}x" if ratio and mw and mk else ""
        out(f"{label:<30} {fmt(mw, digits):>9} [{raw(ws)}]".ljust(64)
            + f"{fmt(mk, digits):>9} [{raw(k6)}]".ljust(38) + f"{r:>8}  {target}")
        return mw, mk

    head = f"{'figure':<30} {'wsstorm':>9}".ljust(64) + f"{'k6':>9}".ljust(38) + f"{'k6/ws':>8}  target"
    out(f"A. closed loop: {a_clients} connections, 1 request in flight each, ~100-byte JSON "
        f"correlated by id, {meta['a_duration']} s per run")
    out(head)
    mw, mk = row("CPU µs per round trip", a, 2,
                 target="wsstorm <= 8.0, k6 ~35.8")
    verdict_a = "ok" if mw is not None and mw <= 8.0 else "MISSED"
    row("round trips per second", a_rate, 0, ratio=False)
    row("round trips per CPU second", per_core, 0, ratio=False)
    row("CPU seconds (user+sys)", a_cpu, 2, ratio=False)
    row("gen. CPU busy µs per rt", a_core, 2)
    row("echo server CPU (%)", a_srv, 0, ratio=False)
    row("others' user time, gen CPU %", a_gen_other, 0, ratio=False)
    row("others' user time, srv CPU %", a_srv_other, 0, ratio=False)
    noisy = [v for t in ("wsstorm", "k6") for v in a_gen_other[t] + a_srv_other[t] if v is not None and v > 10]
    if noisy:
        warnings.append(
            f"A: other processes used up to {max(noisy):.0f}% of the generator's or the server's "
            "CPU in user time during some A run: the machine was not quiet, those runs' CPU "
            "figures may be skewed (see the raw values)")
    out("")
    out(f"B. idle connections: {b_conns} opened over {meta['b_ramp']} s, held {meta['b_hold']} s; "
        "(peak RSS while held - baseline RSS with 1 connection) / "
        f"{b_conns - 1}")
    out(head)
    mw_b, _ = row("KiB per idle connection", b, 2, target="wsstorm <= 6, k6 ~195")
    verdict_b = "ok" if mw_b is not None and mw_b <= 6.0 else "MISSED"
    row(f"peak RSS, {b_conns} conns (MiB)", b_peak, 1, ratio=False)
    row("baseline RSS, 1 conn (MiB)", b_base, 1, ratio=False)
    out("")
    out(f"C. connect cycle: {c_clients} clients, each: connect, one ~100-byte JSON request correlated "
        f"by id, close, again; {meta.get('c_duration')} s per run")
    out(head)
    mw_c, _ = row("CPU µs per cycle", cc, 1, target="wsstorm <= 55, k6 ~167")
    verdict_c = "ok" if mw_c is not None and mw_c <= 55.0 else "MISSED"
    row("cycles per second", c_rate, 0, ratio=False)
    out("")
    out(f"wsstorm targets: CPU per round trip <= 8.0 us: {verdict_a}; "
        f"memory per idle connection <= 6 KiB: {verdict_b}; CPU per connect cycle <= 55 us: {verdict_c}")
    if problems:
        out("")
        out("CHECKS FAILED (figures above may be invalid):")
        for pr in problems:
            out(f"  - {pr}")
    else:
        out("checks     every run completed; all connections opened; no timeouts, "
            "mismatches, drops or errors")
    for w in warnings:
        out(f"warning    {w}")
    out("")
    out("machine")
    out(f"  CPUs       {meta['nproc']} x {meta['cpu_model']}")
    out(f"  kernel     Linux {meta['kernel']}, {meta['mem']}")
    out(f"  tools      {meta['wsstorm_version']}; {meta['k6_version']}")
    out(f"  pinning    generator on CPU {meta['gen_cpu']}, echo server (wsstorm serve {meta['target']}) on CPU {meta['server_cpu']}")
    out(f"  run        {meta['started']}, raw data in {run_dir}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if markdown:
        md = []
        md.append("# Benchmarks: wsstorm vs k6")
        md.append("")
        md.append(f"Written by `bench/run.sh` (RUNS={runs}; see bench/README.md for how each figure is "
                  "measured): medians of the runs, min–max in brackets. Both tools run the same "
                  "workload against the same echo server (`wsstorm serve`) in one run, alternately, "
                  "the generator pinned to one CPU and the server to the other. CPU is user + sys of "
                  "the whole generator process (wait4 rusage), memory its peak RSS from /proc.")
        md.append("")
        md.append(f"Machine: {meta['nproc']} × {meta['cpu_model']}, Linux {meta['kernel']}, {meta['mem']}. "
                  f"Tools: {meta['wsstorm_version']}; {meta['k6_version']}. Run {meta['started']}.")
        md.append("")
        md.append("| workload | figure | wsstorm | k6 | k6 / wsstorm | target |")
        md.append("|---|---|---|---|---|---|")

        def mdrow(work, label, vals, digits, target, higher_better=False):
            mw, mk = med(vals["wsstorm"]), med(vals["k6"])
            ratio = ""
            if mw and mk:
                ratio = f"{(mw / mk if higher_better else mk / mw):.1f}×"
            md.append(f"| {work} | {label} | {fmt(mw, digits)} [{minmax(vals['wsstorm'], digits)}] | "
                      f"{fmt(mk, digits)} [{minmax(vals['k6'], digits)}] | {ratio} | {target} |")

        mdrow(f"A. closed loop, {a_clients} conns", "CPU µs per correlated round trip", a, 2, "≤ 8.0 µs; ≥ 4.5× k6")
        mdrow(f"A. closed loop, {a_clients} conns", "round trips per CPU second", per_core, 0,
              "(k6 / wsstorm column: wsstorm's advantage)", higher_better=True)
        mdrow(f"B. {b_conns} idle conns, heartbeat", "KiB per idle connection", b, 2, "≤ 6 KiB; ≥ 30× k6")
        mdrow(f"B. {b_conns} idle conns, heartbeat", f"peak RSS holding {b_conns} (MiB)", b_peak, 1, "")
        mdrow(f"C. connect cycle, {c_clients} clients", "CPU µs per connect + message + close", cc, 1, "≤ 55 µs")
        md.append("")
        md.append(f"Targets: CPU per round trip ≤ 8.0 µs: **{verdict_a}**; memory per idle connection ≤ 6 KiB: "
                  f"**{verdict_b}**; CPU per connect cycle ≤ 55 µs: **{verdict_c}**.")
        md.append("")
        md.append("Where the time goes (perf profiles of A and C), and why this machine's kernel makes "
                  "both tools slower than on the machine the targets were set on: bench/README.md, "
                  "\"Profile\".")
        if problems:
            md.append("")
            md.append("Checks failed: " + "; ".join(problems))
        for scale in scale_dirs:
            report = os.path.join(scale, "report.txt")
            if os.path.exists(report):
                md.append("")
                md.append(f"## Scale: `bench/scripts/scale.sh` ({os.path.basename(scale.rstrip('/'))})")
                md.append("")
                md.append("```")
                md.append(open(report).read().rstrip())
                md.append("```")
        with open(markdown, "w") as f:
            f.write("\n".join(md) + "\n")
    return text, bool(problems)


if __name__ == "__main__":
    text, failed = main()
    sys.exit(1 if failed else 0)
