#!/usr/bin/env bash
# The memory-flatness benchmark (issue 9): bench/scenarios/memory-flat.toml, 10 000 requests/s over 1 000
# connections for 10 minutes, against `wsstorm serve --no-reply-fraction 1` (it reads every
# request and answers none), and the same with k6 (bench/k6/memory-flat.js: the correlation, its
# timeout and the in-flight cap written by hand), alternately, RUNS times each (default 3). The
# generator (pinned to CPU 0) is sampled by measure.py every 5 s; the server is pinned to CPU 1.
# Prints per tool, per run and as medians: the generator's RSS at 60 s, its lowest and highest
# after 60 s, the spread (highest - lowest) / lowest, its RSS at the end against the one at
# 60 s, the counts (requests sent, timed out, capped) and its CPU time.
# DURATION=120s shortens the runs (the window is still from 60 s on); TOOLS=wsstorm (or k6)
# runs one tool only; WSSTORM=path and K6=path use those binaries.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(dirname "$BENCH")
RUNS=${RUNS:-3}
DURATION=${DURATION:-10m}
TOOLS=${TOOLS:-wsstorm k6}
PYTHON=${PYTHON:-python3}
if [[ -z ${WSSTORM:-} ]]; then
    cargo build --release --locked --manifest-path "$ROOT/Cargo.toml" >&2
    WSSTORM=$ROOT/target/release/wsstorm
fi
RUN=$BENCH/.cache/memory/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN"
# The binary measured, so a rebuild during the run changes nothing.
cp "$WSSTORM" "$RUN/wsstorm"
WSSTORM=$RUN/wsstorm
if [[ $TOOLS == *k6* ]]; then
    K6=${K6:-$("$BENCH/scripts/k6.sh")}
    "$K6" version | head -n1 > "$RUN/k6-version.txt"
fi
SECONDS_EACH=$("$WSSTORM" validate "$BENCH/scenarios/memory-flat.toml" --duration "$DURATION" >/dev/null && "$PYTHON" -c '
import re, sys
n, unit = re.fullmatch(r"(\d+)(s|m)", sys.argv[1]).groups()
print(int(n) * (60 if unit == "m" else 1))' "$DURATION")
ulimit -n 4096
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 1 timeout $((RUNS * 2 * (SECONDS_EACH + 45) + 60)) "$WSSTORM" serve --listen "127.0.0.1:$PORT" \
    --no-reply-fraction 1 --stats-every 60s > "$RUN/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill -INT $SERVER_PID 2>/dev/null || true; wait $SERVER_PID 2>/dev/null || true' EXIT
sleep 1
for i in $(seq 1 "$RUNS"); do
    for tool in $TOOLS; do
        case $tool in
            wsstorm) command=("$WSSTORM" run "$BENCH/scenarios/memory-flat.toml" --target "ws://127.0.0.1:$PORT/"
                              --duration "$DURATION" --out "$RUN/wsstorm-$i" --quiet) ;;
            k6) command=(env K6_NO_USAGE_REPORT=true TARGET="ws://127.0.0.1:$PORT/" DURATION_S="$SECONDS_EACH"
                         VUS=1000 SUMMARY="$RUN/k6-$i.summary.json"
                         "$K6" run --quiet --address "" "$BENCH/k6/memory-flat.js") ;;
            *) echo "unknown tool $tool" >&2; exit 2 ;;
        esac
        "$PYTHON" "$BENCH/scripts/measure.py" --out "$RUN/$tool-$i.json" --interval 5 \
            --deadline $((SECONDS_EACH + 40)) --stdout "$RUN/$tool-$i.stdout" --stderr "$RUN/$tool-$i.stderr" -- \
            taskset -c 0 "${command[@]}" || true
        sleep 2
    done
done
kill -INT $SERVER_PID 2>/dev/null || true
wait $SERVER_PID 2>/dev/null || true
trap - EXIT
"$PYTHON" - "$RUN" "$RUNS" $TOOLS <<'PY'
import json, statistics, sys
run, runs, tools = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

def counts(tool, i):
    if tool == "wsstorm":
        c = json.load(open(f"{run}/wsstorm-{i}/summary.json"))["counts"]
        return c["requests"], c["timeouts"], c["capped"]
    m = json.load(open(f"{run}/k6-{i}.summary.json"))["metrics"]
    n = lambda k: m[k]["values"]["count"] if k in m else 0
    return n("requests"), n("timeouts"), n("capped")

for tool in tools:
    rows = []
    for i in range(1, runs + 1):
        m = json.load(open(f"{run}/{tool}-{i}.json"))
        requests, timeouts, capped = counts(tool, i)
        # After the first minute: the ramp is over and every table has filled to its bound.
        window = [x for x in m["samples"] if x["t"] >= 60 and x["rss"]]
        at60, last = window[0]["rss"], window[-1]["rss"]
        low, high = min(x["rss"] for x in window), max(x["rss"] for x in window)
        rows.append({
            "RSS@60s MiB": at60 / 1024, "min MiB": low / 1024, "max MiB": high / 1024,
            "spread %": 100 * (high - low) / low, "end vs 60s %": 100 * (last - at60) / at60,
            "requests": requests, "timeouts": timeouts, "capped": capped,
            "CPU s": m["cpu_s"], "samples": len(window),
        })
    keys = list(rows[0])
    print(tool)
    print("run  " + "  ".join(f"{k:>13}" for k in keys))
    for i, r in enumerate(rows, 1):
        print(f"{i:<4} " + "  ".join(f"{r[k]:>13.2f}" for k in keys))
    print("med  " + "  ".join(f"{statistics.median(r[k] for r in rows):>13.2f}" for k in keys))
print(f"raw data (every RSS sample in TOOL-N.json): {run}")
PY
