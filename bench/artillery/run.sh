#!/usr/bin/env bash
# wsstorm's Socket.IO preset beside Artillery's Socket.IO engine on the same python-socketio
# server, in one run: see run.py (the benchmark) and README.md.
#   bench/artillery/run.sh            # RUNS=3
#   RUNS=5 B_CONNS=2000 bench/artillery/run.sh
exec "${PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/run.py" "$@"
