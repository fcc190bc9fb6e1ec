# shellcheck shell=bash
# What bench/run.sh and bench/observe.sh share, sourced by them. The functions use BENCH, ROOT,
# PYTHON, GEN_CPU, SERVER_CPU, log and die; private_wsstorm and measured also RUN_DIR (measured
# SERVER_CHILD when set); raise_open_files comes after read_shapes. Nothing here starts a
# process that outlives the function that started it, except `measured`'s measure.py, whose
# PID is in MEASURE_PID (and its command's in the file CHILD_PIDFILE) for the caller's cleanup.

MEASURE_PID=""
CHILD_PIDFILE=""

# Stops the measure.py run under way, if any (the caller's cleanup): SIGTERM, which measure.py
# forwards to its command, then after 3 s SIGKILL to both.
stop_measure() {
    [[ -n "$MEASURE_PID" ]] && kill -0 "$MEASURE_PID" 2>/dev/null || return 0
    kill -TERM "$MEASURE_PID" 2>/dev/null || true
    for _ in 1 2 3 4 5 6; do kill -0 "$MEASURE_PID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$MEASURE_PID" 2>/dev/null; then
        local child
        child=$(cat "$CHILD_PIDFILE" 2>/dev/null || true)
        [[ -n "$child" ]] && kill -KILL "$child" 2>/dev/null || true
        kill -KILL "$MEASURE_PID" 2>/dev/null || true
    fi
}

# Sets WSSTORM: the binary given in WSSTORM, else a fresh release build.
build_wsstorm() {
    if [[ -n "${WSSTORM:-}" ]]; then
        log "using the given binary WSSTORM=$WSSTORM (no build)"
    else
        log "building wsstorm (cargo build --release)"
        (cd "$ROOT" && cargo build --release >&2) || die "cargo build --release failed"
        WSSTORM="${CARGO_TARGET_DIR:-$ROOT/target}/release/wsstorm"
    fi
    [[ -x "$WSSTORM" ]] || die "no wsstorm binary at $WSSTORM"
}

# Copies WSSTORM into RUN_DIR, so that a rebuild in the (shared) target directory cannot change
# it mid-run, and sets WSSTORM to the copy and WSSTORM_VERSION to its version and checksum.
private_wsstorm() {
    cp "$WSSTORM" "$RUN_DIR/wsstorm"
    WSSTORM="$RUN_DIR/wsstorm"
    WSSTORM_VERSION="$("$WSSTORM" --version 2>/dev/null | head -n1 || echo "wsstorm (version unknown)"), sha256 $(sha256sum "$WSSTORM" | cut -c1-12)"
}

toml_value() { # FILE KEY: the first `KEY = VALUE` (quotes and trailing comment removed)
    sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*\"\{0,1\}\([^\"#]*\)\"\{0,1\}.*/\1/p" "$1" \
        | head -n1 | tr -d '[:space:]'
}
seconds() { # "5s" -> 5
    [[ "$1" =~ ^([0-9]+)s$ ]] || die "expected whole seconds such as \"5s\", got '$1'"
    echo "${BASH_REMATCH[1]}"
}

# The shapes of workloads A and B, read from their scenario files so that every tool runs the
# same: A_CLIENTS, B_CONNS, B_RAMP, B_HOLD and B_DURATION.
read_shapes() {
    A_CLIENTS=$(toml_value "$BENCH/scenarios/closed-loop.toml" clients)
    B_CONNS=$(toml_value "$BENCH/scenarios/idle.toml" clients)
    B_RAMP=$(seconds "$(toml_value "$BENCH/scenarios/idle.toml" ramp)")
    B_HOLD=$(seconds "$(toml_value "$BENCH/scenarios/idle.toml" hold)")
    B_DURATION=$((B_RAMP + B_HOLD))
}

# Workload B's idle connections are a file descriptor each, in the generator and the server:
# raises the soft limit for B_CONNS of them, or says why it cannot.
raise_open_files() {
    local need=$((B_CONNS + 1024)) hard
    if (( $(ulimit -n) < need )); then
        hard=$(ulimit -Hn)
        if [[ "$hard" != unlimited ]] && (( hard < need )); then
            die "workload B needs $need open files but the hard limit is $hard (ulimit -Hn)"
        fi
        ulimit -n "$need"
    fi
    log "open files limit: $(ulimit -n)"
}

# The machine, as lines of a JSON object (each with its comma): for the runs' meta.json.
machine_json() {
    cat <<EOF
  "nproc": $(nproc),
  "cpu_model": "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1 | tr -d '"\\')",
  "kernel": "$(uname -r)",
  "mem": "$(awk '/MemTotal/ {printf "%.1f GiB RAM", $2 / 1048576}' /proc/meminfo)",
EOF
}

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_tcp() { # PORT PID LOG: until PORT accepts, or PID exited
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        kill -0 "$2" 2>/dev/null || die "a process exited before it listened on $1 (see $3)"
        sleep 0.1
    done
    die "nothing listens on $1 (see $3)"
}
child_of() { # PID: its first child (the process timeout(1) runs)
    awk '{print $1}' "/proc/$1/task/$1/children" 2>/dev/null || true
}

# measured NAME DEADLINE [measure.py options] -- COMMAND...: one generator run, pinned to
# GEN_CPU, measured by measure.py into RUN_DIR/NAME.json (SERVER_CHILD's CPU time too); says
# when it exits with anything but 0.
measured() {
    local name=$1 deadline=$2
    shift 2
    local opts=()
    while [[ $1 != -- ]]; do opts+=("$1"); shift; done
    shift
    CHILD_PIDFILE="$RUN_DIR/$name.pid"
    "$PYTHON" "$BENCH/scripts/measure.py" --out "$RUN_DIR/$name.json" --deadline "$deadline" \
        --pidfile "$CHILD_PIDFILE" --stdout "$RUN_DIR/$name.stdout" --stderr "$RUN_DIR/$name.stderr" \
        --watch-cpus "$GEN_CPU,$SERVER_CPU" --other-pid "${SERVER_CHILD:-0}" \
        "${opts[@]}" -- taskset -c "$GEN_CPU" "$@" &
    MEASURE_PID=$!
    local rc=0
    wait "$MEASURE_PID" || rc=$?
    MEASURE_PID=""
    # wsstorm exits 3 when a threshold is crossed (none is set here); anything else is reported.
    if (( rc != 0 )); then
        log "warning: $name exited with $rc (see $RUN_DIR/$name.stderr)"
    fi
}
