#!/usr/bin/env bash
# Runs a scenario as N shards on the current kubectl context and merges them.
#
#   deploy/kubernetes/run.sh [SCENARIO] [SHARDS] [TARGET]
#
# SCENARIO defaults to deploy/kubernetes/scenario.toml, SHARDS to 4, TARGET to the scenario's
# own target (the built-in echo target of target.yaml for the example). WSSTORM_IMAGE names the
# image (default wsstorm:local, built with deploy/Dockerfile); WSSTORM_LEAD is how long before
# the shared start the shards are created (default 60 s: time to schedule pods and pull the
# image; a shard that starts later says so in its summary). Exits with the merge's code:
# 0 passed, 3 thresholds crossed, other codes for a failed run. See docs/distributed.md.
# PROMETHEUS_WRITE_URL (e.g. http://prometheus.monitoring:9090/api/v1/write) makes every shard
# remote-write its series there while it runs, labelled run_id=RUN_ID and segment=INDEX/N, so
# that one Prometheus shows the whole run live (docs/observability.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scenario=${1:-$here/scenario.toml}
shards=${2:-4}
target=${3:-$(sed -n 's/^target *= *"\(.*\)".*/\1/p' "$scenario" | head -n 1)}
image=${WSSTORM_IMAGE:-wsstorm:local}
lead=${WSSTORM_LEAD:-60}
run_id=$(date -u +%Y%m%dT%H%M%SZ)
start_at=$(date -u -d "+$lead seconds" +%Y-%m-%dT%H:%M:%SZ)

[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "error: SHARDS must be a whole number > 0, not '$shards'" >&2; exit 2; }
[[ -n $target ]] || { echo "error: no target: give one, or set target in $scenario" >&2; exit 2; }
if command -v wsstorm >/dev/null; then
    wsstorm validate "$scenario" --target "$target" --segment "0/$shards" >/dev/null
fi

kubectl apply -f "$here/results-pvc.yaml"
kubectl delete job wsstorm-shards wsstorm-merge --ignore-not-found --wait=true
kubectl create configmap wsstorm-run \
    --from-file=scenario.toml="$scenario" \
    --from-literal=shards="$shards" \
    --from-literal=start-at="$start_at" \
    --from-literal=target="$target" \
    --from-literal=run-id="$run_id" \
    ${PROMETHEUS_WRITE_URL:+--from-literal=metrics-out="prometheus-rw=$PROMETHEUS_WRITE_URL"} \
    --dry-run=client -o yaml | kubectl apply -f -

for_this_run() {
    sed -e "s/^  completions: 4$/  completions: $shards/" \
        -e "s/^  parallelism: 4$/  parallelism: $shards/" \
        -e "s|image: wsstorm:local|image: $image|" "$1"
}

# Waits until a Job has completed (0) or failed (1).
await() {
    while true; do
        local state
        state=$(kubectl get job "$1" -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}')
        case " $state " in
            *" Complete "*) return 0 ;;
            *" Failed "*) return 1 ;;
        esac
        sleep 5
    done
}

echo "run $run_id: $shards shards of $scenario against $target, starting at $start_at"
for_this_run "$here/shards-job.yaml" | kubectl apply -f -
if ! await wsstorm-shards; then
    echo "warning: a shard failed (kubectl logs -l app.kubernetes.io/component=shard); the merge will name it and exit 1" >&2
fi
for_this_run "$here/merge-job.yaml" | kubectl apply -f -
await wsstorm-merge || true
kubectl logs job/wsstorm-merge
code=$(kubectl get pods -l job-name=wsstorm-merge \
    -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}')
echo "results: /results/$run_id/merged on the volume wsstorm-results (docs/distributed.md shows how to copy them)"
exit "${code:-1}"
