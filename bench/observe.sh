#!/usr/bin/env bash
# The live export's cost (issue 20), side by side in one run: workload A of bench/run.sh
# (CPU per correlated round trip, closed loop, 50 connections) plain, with --metrics-listen
# scraped once a second, and with --metrics-out prometheus-rw=URL writing to a real local
# Prometheus every second; then workload B (memory per idle connection, 10000 connections)
# plain and with both.
#
#   bench/observe.sh                       # RUNS=3, A_DURATION=15: ~8 minutes (plus the build)
#   RUNS=1 A_DURATION=5 bench/observe.sh   # a quick smoke run
#   SCRAPER=curl bench/observe.sh          # scrape with curl once a second, not Prometheus
#
# A. Per repetition, the three variants one after another, the order rotated each repetition
#    (plain listen rw, listen rw plain, rw plain listen) so that drift does not favour one:
#      plain   wsstorm run closed-loop.toml
#      listen  ... --metrics-listen 127.0.0.1:MPORT, scraped every 1 s by the local Prometheus
#              (or, with SCRAPER=curl, by `curl` in a loop)
#      rw      ... --metrics-out prometheus-rw=http://127.0.0.1:PPORT/api/v1/write (every 1 s)
#    Figure: user + sys of the wsstorm process / counts.answered, in µs, as run.sh measures it.
# B. Per repetition, plain and export (--metrics-listen, scraped, and --metrics-out together),
#    each as a 1-connection baseline and 10000 idle connections: (peak RSS held with 10000 -
#    peak RSS held with 1) / 9999, as run.sh measures it.
#
# Everything runs on loopback (127.0.0.1). The echo server is pinned to CPU $SERVER_CPU, the
# generator to CPU $GEN_CPU, Prometheus and the scraper to CPU $AUX_CPU (the server's by
# default: the generator's CPU stays the generator's). Prometheus (/usr/bin/prometheus, with
# --web.enable-remote-write-receiver) runs for the whole script with its TSDB in a temporary
# directory, and is queried after each run to check that the samples arrived. Every process the
# script starts is bounded in time (timeout(1), measure.py's deadline) and stopped by its PID on
# exit. Results: the table on stdout and in bench/.cache/observe-results.txt; raw data in
# bench/.cache/observe/<UTC timestamp>/. See bench/README.md.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
CACHE="$BENCH/.cache"

RUNS=${RUNS:-3}                  # repetitions of every measurement (medians are reported)
A_DURATION=${A_DURATION:-15}     # seconds of load per workload-A run
BASE_DURATION=${BASE_DURATION:-5} # seconds of the 1-connection baseline runs of workload B
WORKLOADS=${WORKLOADS:-A B}      # A, B or both
GEN_CPU=${GEN_CPU:-0}            # CPU the generator is pinned to
SERVER_CPU=${SERVER_CPU:-1}      # CPU the echo server is pinned to
AUX_CPU=${AUX_CPU:-$SERVER_CPU}  # CPU Prometheus and the curl scraper are pinned to
SCRAPER=${SCRAPER:-prometheus}   # who scrapes --metrics-listen: prometheus or curl
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PYTHON=${PYTHON:-python3}

log() { printf '[observe %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=bench/scripts/common.sh
source "$BENCH/scripts/common.sh"

# ---- processes this script started, stopped by PID on exit -----------------------------------
SERVER_PID=""
PROM_PID=""
SCRAPE_PID=""
PROM_DATA=""
stop_pid() { # PID: SIGTERM, wait up to 3 s, then SIGKILL (only a process this script started)
    local pid=$1
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_measure
    stop_pid "$SCRAPE_PID"
    stop_pid "$PROM_PID"
    stop_pid "$SERVER_PID"
    [[ -n "$PROM_DATA" && -d "$PROM_DATA" ]] && rm -rf -- "$PROM_DATA"
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted: stopping the processes this run started"; exit 130' INT TERM

# ---- prerequisites ----------------------------------------------------------------------------
command -v taskset >/dev/null || die "taskset (util-linux) is needed"
command -v curl >/dev/null || die "curl is needed"
command -v "$PYTHON" >/dev/null || die "python3 is needed"
[[ -x "$PROMETHEUS" ]] || die "no Prometheus at $PROMETHEUS (Debian: apt-get install prometheus)"
(( $(nproc) >= 2 )) || log "warning: fewer than 2 CPUs: the generator and the server share one"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ "$SCRAPER" == prometheus || "$SCRAPER" == curl ]] || die "SCRAPER must be prometheus or curl"
mkdir -p "$CACHE"

build_wsstorm

# ---- parameters read from the scenario files (as run.sh does) ---------------------------------
read_shapes

[[ " $WORKLOADS " == *" B "* ]] && raise_open_files
PORT=${PORT:-$(free_port)}       # echo server
PROM_PORT=$(free_port)           # Prometheus (web, API, remote-write receiver)
METRICS_PORT=$(free_port)        # wsstorm --metrics-listen
while [[ "$PROM_PORT" == "$PORT" ]]; do PROM_PORT=$(free_port); done
while [[ "$METRICS_PORT" == "$PORT" || "$METRICS_PORT" == "$PROM_PORT" ]]; do METRICS_PORT=$(free_port); done
TARGET="ws://127.0.0.1:$PORT/"
PROM_URL="http://127.0.0.1:$PROM_PORT"
RW_URL="$PROM_URL/api/v1/write"
METRICS_ADDR="127.0.0.1:$METRICS_PORT"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$CACHE/observe/$STAMP"
mkdir -p "$RUN_DIR"
private_wsstorm
GIT_REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
GIT_DIRTY=$(cd "$ROOT" && git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l || echo 0)
if (( GIT_DIRTY > 0 )); then GIT_REV+=" (+$GIT_DIRTY uncommitted files under src/ or Cargo.*)"; fi

for f in closed-loop.toml idle.toml idle-baseline.toml; do
    "$WSSTORM" validate "$BENCH/scenarios/$f" --target "$TARGET" >/dev/null \
        || die "wsstorm validate rejected bench/scenarios/$f"
done

# Upper bound on the whole script; the server and Prometheus stop by themselves after it.
LIFETIME=$(( 120 + RUNS * (3 * (A_DURATION + 20) + 2 * (BASE_DURATION + 15) + 2 * (B_DURATION + 35)) ))

# ---- echo server --------------------------------------------------------------------------------
log "echo server: wsstorm serve --listen 127.0.0.1:$PORT on CPU $SERVER_CPU (at most ${LIFETIME}s)"
taskset -c "$SERVER_CPU" timeout "$LIFETIME" "$WSSTORM" serve --listen "127.0.0.1:$PORT" \
    >"$RUN_DIR/server.log" 2>&1 &
SERVER_PID=$!
wait_tcp "$PORT" "$SERVER_PID" "$RUN_DIR/server.log"
SERVER_CHILD=$(child_of "$SERVER_PID")

# ---- Prometheus: the remote-write receiver, and (SCRAPER=prometheus) the scraper ---------------
PROM_DATA=$(mktemp -d "${TMPDIR:-/tmp}/wsstorm-observe-tsdb.XXXXXX")
{
    echo "global:"
    echo "  scrape_interval: 1s"
    echo "  scrape_timeout: 1s"
    if [[ "$SCRAPER" == prometheus ]]; then
        # Scrapes $METRICS_ADDR all the time: only the listen runs (and B's export runs) serve
        # it; in the others the connection is refused, which costs the generator nothing.
        echo "scrape_configs:"
        echo "  - job_name: wsstorm"
        echo "    static_configs:"
        echo "      - targets: ['$METRICS_ADDR']"
    fi
} >"$RUN_DIR/prometheus.yml"
PROMETHEUS_VERSION=$("$PROMETHEUS" --version 2>&1 | head -n1)
log "$PROMETHEUS_VERSION on 127.0.0.1:$PROM_PORT, CPU $AUX_CPU (at most ${LIFETIME}s)"
taskset -c "$AUX_CPU" timeout "$LIFETIME" "$PROMETHEUS" --config.file="$RUN_DIR/prometheus.yml" \
    --storage.tsdb.path="$PROM_DATA" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --web.enable-remote-write-receiver >"$RUN_DIR/prometheus.log" 2>&1 &
PROM_PID=$!
wait_tcp "$PROM_PORT" "$PROM_PID" "$RUN_DIR/prometheus.log"
for _ in $(seq 1 100); do
    curl -sf --max-time 1 "$PROM_URL/-/ready" >/dev/null 2>&1 && break
    kill -0 "$PROM_PID" 2>/dev/null || die "Prometheus exited (see $RUN_DIR/prometheus.log)"
    sleep 0.2
done
curl -sf --max-time 1 "$PROM_URL/-/ready" >/dev/null || die "Prometheus is not ready (see $RUN_DIR/prometheus.log)"
PROM_CHILD=$(child_of "$PROM_PID")

proc_cpu_ticks() { # PID: utime + stime in clock ticks (0 when unknown)
    local f
    f=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    awk '{print $12 + $13}' <<<"$f"
}

# The samples Prometheus holds of one run (its run_id), by the way they came (job="wsstorm":
# scraped; no job: remote-written), and the samples per scrape.
prom_check() { # NAME RUN_ID
    local q="sum by (job) (count_over_time(wsstorm_answered_total{run_id=\"$2\"}[1h]))"
    curl -s --max-time 5 -G "$PROM_URL/api/v1/query" --data-urlencode "query=$q" \
        >"$RUN_DIR/$1.prom-samples.json" 2>/dev/null || log "warning: Prometheus query failed for $1"
    q="max_over_time(scrape_samples_scraped{job=\"wsstorm\"}[5m])"
    curl -s --max-time 5 -G "$PROM_URL/api/v1/query" --data-urlencode "query=$q" \
        >"$RUN_DIR/$1.prom-scrape.json" 2>/dev/null || true
}

# ---- the curl scraper (SCRAPER=curl): one GET /metrics a second -------------------------------
start_scraper() { # DEADLINE
    [[ "$SCRAPER" == curl ]] || return 0
    taskset -c "$AUX_CPU" timeout "$1" bash -c \
        'while :; do curl -s -o /dev/null --max-time 1 "$1" || true; sleep 1; done' _ "http://$METRICS_ADDR/metrics" &
    SCRAPE_PID=$!
}
stop_scraper() {
    stop_pid "$SCRAPE_PID"
    SCRAPE_PID=""
}

# measure NAME DEADLINE [measure.py options] -- COMMAND...: one generator run, pinned to GEN_CPU
# (as run.sh's), plus Prometheus's CPU time over the run.
measure() {
    local prom_before
    prom_before=$(proc_cpu_ticks "$PROM_CHILD")
    measured "$@"
    echo $(( $(proc_cpu_ticks "$PROM_CHILD") - prom_before )) >"$RUN_DIR/$1.prom-ticks"
    sleep 2 # let the server finish closing, and Prometheus take the last samples
}

variant_flags() { # VARIANT RUN_ID: the flags of one variant
    case $1 in
        plain) ;;
        listen) printf '%s\n' --metrics-listen "$METRICS_ADDR" --run-id "$2" ;;
        rw) printf '%s\n' --metrics-out "prometheus-rw=$RW_URL" --run-id "$2" ;;
        export) printf '%s\n' --metrics-listen "$METRICS_ADDR" --metrics-out "prometheus-rw=$RW_URL" --run-id "$2" ;;
    esac
}

cat >"$RUN_DIR/meta.json" <<EOF
{
  "started": "$STAMP",
  "runs": $RUNS,
  "workloads": "$WORKLOADS",
  "a_clients": $A_CLIENTS,
  "a_duration": $A_DURATION,
  "b_conns": $B_CONNS,
  "b_ramp": $B_RAMP,
  "b_hold": $B_HOLD,
  "base_duration": $BASE_DURATION,
  "gen_cpu": $GEN_CPU,
  "server_cpu": $SERVER_CPU,
  "aux_cpu": $AUX_CPU,
  "scraper": "$SCRAPER",
  "target": "$TARGET",
  "metrics_listen": "$METRICS_ADDR",
  "remote_write": "$RW_URL",
$(machine_json)
  "wsstorm_version": "$WSSTORM_VERSION",
  "git": "$GIT_REV",
  "prometheus_version": "$PROMETHEUS_VERSION",
  "clk_tck": $(getconf CLK_TCK)
}
EOF

# ---- A: CPU per correlated round trip, three variants alternated -------------------------------
VARIANTS=(plain listen rw)
if [[ " $WORKLOADS " == *" A "* ]]; then for i in $(seq 1 "$RUNS"); do
    for k in 0 1 2; do
        v=${VARIANTS[$(( (i - 1 + k) % 3 ))]}
        name="a-$v-$i"
        rid="observe-$STAMP-$name"
        mapfile -t flags < <(variant_flags "$v" "$rid")
        log "A run $i/$RUNS: $v ${flags[*]:0:2}, $A_CLIENTS connections, ${A_DURATION}s"
        if [[ $v == listen ]]; then start_scraper $((A_DURATION + 40)); fi
        measure "$name" $((A_DURATION + 30)) -- \
            "$WSSTORM" run "$BENCH/scenarios/closed-loop.toml" --target "$TARGET" --duration "${A_DURATION}s" \
            --out "$RUN_DIR/$name" --quiet "${flags[@]}"
        if [[ $v == listen ]]; then stop_scraper; fi
        if [[ $v != plain ]]; then prom_check "$name" "$rid"; fi
    done
done; fi

# ---- B: memory per idle connection, plain and with both exports -------------------------------
SAMPLE=(--count-sockets --port "$PORT" --interval 0.25)
B_VARIANTS=(plain export)
if [[ " $WORKLOADS " == *" B "* ]]; then for i in $(seq 1 "$RUNS"); do
    for k in 0 1; do
        v=${B_VARIANTS[$(( (i - 1 + k) % 2 ))]}
        name="b-$v-base-$i"
        rid="observe-$STAMP-$name"
        mapfile -t flags < <(variant_flags "$v" "$rid")
        log "B run $i/$RUNS: $v baseline, 1 connection, ${BASE_DURATION}s"
        if [[ $v == export ]]; then start_scraper $((BASE_DURATION + 45)); fi
        measure "$name" $((BASE_DURATION + 30)) "${SAMPLE[@]}" --hold-sockets 1 -- \
            "$WSSTORM" run "$BENCH/scenarios/idle-baseline.toml" --target "$TARGET" --duration "${BASE_DURATION}s" \
            --out "$RUN_DIR/$name" --quiet "${flags[@]}"
        if [[ $v == export ]]; then stop_scraper; prom_check "$name" "$rid"; fi

        name="b-$v-$i"
        rid="observe-$STAMP-$name"
        mapfile -t flags < <(variant_flags "$v" "$rid")
        log "B run $i/$RUNS: $v, $B_CONNS idle connections (ramp ${B_RAMP}s, hold ${B_HOLD}s)"
        if [[ $v == export ]]; then start_scraper $((B_DURATION + 55)); fi
        measure "$name" $((B_DURATION + 40)) "${SAMPLE[@]}" --hold-sockets "$B_CONNS" -- \
            "$WSSTORM" run "$BENCH/scenarios/idle.toml" --target "$TARGET" --out "$RUN_DIR/$name" --quiet "${flags[@]}"
        if [[ $v == export ]]; then stop_scraper; prom_check "$name" "$rid"; fi
    done
done; fi

# ---- report -----------------------------------------------------------------------------------
rc=0
"$PYTHON" "$BENCH/report/observe_report.py" "$RUN_DIR" >"$RUN_DIR/results.txt" || rc=$?
cp "$RUN_DIR/results.txt" "$CACHE/observe-results.txt"
echo
cat "$CACHE/observe-results.txt"
echo "(also in $CACHE/observe-results.txt; raw data in $RUN_DIR)"
exit "$rc"
