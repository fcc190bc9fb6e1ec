#!/usr/bin/env bash
# The open-model benchmark: bench/scenarios/open-rate.toml (50 000 requests/s over 1 000 clients) against
# `wsstorm serve` pinned to CPU 1, the generator pinned to CPU 0, RUNS times (default 3).
# Prints, per run and as medians: intended and achieved requests/s, late sends, rtt p50/p99 raw
# and corrected, and the generator's CPU µs per request (wait4 rusage via measure.py).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(dirname "$BENCH")
RUNS=${RUNS:-3}
PYTHON=${PYTHON:-python3}
if [[ -z ${WSSTORM:-} ]]; then
    cargo build --release --locked --manifest-path "$ROOT/Cargo.toml" >&2
    WSSTORM=$ROOT/target/release/wsstorm
fi
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RUN=$BENCH/.cache/open/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN"
taskset -c 1 timeout $((RUNS * 60 + 60)) "$WSSTORM" serve --listen "127.0.0.1:$PORT" > "$RUN/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill -INT $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true' EXIT
sleep 1
for i in $(seq 1 "$RUNS"); do
    "$PYTHON" "$BENCH/scripts/measure.py" --out "$RUN/run-$i.json" --deadline 60 -- \
        taskset -c 0 "$WSSTORM" run "$BENCH/scenarios/open-rate.toml" --target "ws://127.0.0.1:$PORT/" \
        --out "$RUN/run-$i" --quiet || true
    sleep 2
done
"$PYTHON" - "$RUN" "$RUNS" <<'PY'
import json, statistics, sys
run, runs = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, runs + 1):
    m = json.load(open(f"{run}/run-{i}.json"))
    s = json.load(open(f"{run}/run-{i}/summary.json"))
    c, lat = s["counts"], s["latency"]
    # The whole schedule: 1 s ramp (on average half the clients) + 19 s hold, 50/s per client.
    intended = 50000 * (19 + 0.5) / s["elapsed_s"]
    rows.append({
        "intended/s": intended,
        "achieved/s": c["requests"] / s["elapsed_s"],
        "late sends": c["late_sends"],
        "late %": 100 * c["late_sends"] / max(c["requests"], 1),
        "rtt p50 ms": lat["rtt"]["p50_ms"], "rtt p99 ms": lat["rtt"]["p99_ms"],
        "corr p50 ms": lat["rtt_corrected"]["p50_ms"], "corr p99 ms": lat["rtt_corrected"]["p99_ms"],
        "CPU µs/req": m["cpu_s"] * 1e6 / max(c["requests"], 1),
        "timeouts": c["timeouts"],
    })
keys = list(rows[0])
print("run  " + "  ".join(f"{k:>12}" for k in keys))
for i, r in enumerate(rows, 1):
    print(f"{i:<4} " + "  ".join(f"{r[k]:>12.2f}" for k in keys))
print("med  " + "  ".join(f"{statistics.median(r[k] for r in rows):>12.2f}" for k in keys))
print(f"raw data: {run}")
PY
