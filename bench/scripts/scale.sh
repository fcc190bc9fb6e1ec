#!/usr/bin/env bash
# The scale run: bench/scenarios/scale-250k.toml (250 000 idle clients with heartbeats, ramped over 75 s
# and held 70 s) with `wsstorm run --workers auto` against the built-in target served by
# `wsstorm serve --workers $SERVERS`, all on loopback. Reports the tool's peak RSS (all its
# processes together), CPU, failures, the ramp time and the server's count.
#
#   bench/scripts/scale.sh                    # ~3 minutes plus the build
#   CLIENTS=20000 RAMP=10s HOLD=20s bench/scripts/scale.sh   # a smaller trial
#   SCENARIO=bench/scenarios/storm-100k.toml bench/scripts/scale.sh     # the reconnection storm
#
# Results: bench/.cache/scale/<UTC timestamp>/ (measure.json, results/, server.log, report.txt).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(dirname "$BENCH")
CLIENTS=${CLIENTS:-250000}
RAMP=${RAMP:-75s}
HOLD=${HOLD:-70s}
SERVERS=${SERVERS:-16}
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
PYTHON=${PYTHON:-python3}
SCENARIO=${SCENARIO:-$BENCH/scenarios/scale-250k.toml}

log() { printf '[scale %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [[ -z ${WSSTORM:-} ]]; then
    log "building wsstorm (release)"
    cargo build --release --locked --manifest-path "$ROOT/Cargo.toml" >&2
    WSSTORM=$ROOT/target/release/wsstorm
fi
RUN=$BENCH/.cache/scale/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$RUN"
cp "$WSSTORM" "$RUN/wsstorm"
sed -e "s/^clients = 250000$/clients = $CLIENTS/" -e "s/^ramp = \"75s\"$/ramp = \"$RAMP\"/" \
    -e "s/^hold = \"70s\"$/hold = \"$HOLD\"/" -e '/^duration = /d' \
    "$SCENARIO" > "$RUN/scenario.toml"

SERVER_PID=""
cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -INT "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

log "target: $SERVERS server processes on 127.0.0.1:$PORT"
timeout 900 "$RUN/wsstorm" serve --workers "$SERVERS" --listen "127.0.0.1:$PORT" --stats-every 1s \
    > "$RUN/server.log" 2>&1 &
SERVER_PID=$!
sleep 2
if [[ $SCENARIO == "$BENCH/scenarios/scale-250k.toml" ]]; then
    log "run: $CLIENTS clients, ramp $RAMP, hold $HOLD, --workers auto (log: $RUN/run.log)"
else
    log "run: $SCENARIO, --workers auto (log: $RUN/run.log)"
fi
"$PYTHON" "$BENCH/scripts/measure.py" --tree --interval 1 --deadline 800 --out "$RUN/measure.json" \
    --stdout "$RUN/run.log" --stderr "$RUN/run.err" -- \
    "$RUN/wsstorm" run "$RUN/scenario.toml" --workers auto --target "ws://127.0.0.1:$PORT/" \
    --out "$RUN/results" || true
kill -INT "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=""
"$PYTHON" "$BENCH/report/scale_report.py" "$RUN" | tee "$RUN/report.txt"
