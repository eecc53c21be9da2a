#!/usr/bin/env bash
# Whole runs of `sluice worker` processes sharing a durable throwaway PostgreSQL 15 on
# loopback (fsync on): how the rate grows with the number of workers, the ceiling of
# the coordination, and a sustained run at the reference job's rate. Each run has a
# database of its own: ingest, start the workers with --exit-when-done, wait for all.
#
#   bench/cluster_bench.sh curve [ITEMS_PER_WORKER] [WORKERS...]
#       pipelines/examples/sleep.yaml with ms=50 standing in for download latency,
#       100 items in flight per worker (2,000 items/s per worker at most) and batches
#       of 200;
#       default 20000 items per worker, workers 1 2 4 8.
#   bench/cluster_bench.sh ceiling [ITEMS] [WORKERS...]
#       pipelines/examples/noop.yaml: every result committed, nothing else to do;
#       default 1000000 items, workers 1 2 4.
#   bench/cluster_bench.sh sustained [SECONDS]
#       4 workers, sleep 50 ms with 42 in flight each (at most 3,360 items/s in
#       all, the reference job needs 3,307/s), for SECONDS (default 300).
#
# For each run: items/s (items over the time from the workers' start to the last
# one's end), the workers' CPU (user + system, from /usr/bin/time) and the server's
# (scripts/pg_serve.sh, from /proc), as seconds and as a share of one core.
# SLUICE_BIN: the sluice binary (default build/rel/sluice).
set -euo pipefail
cd "$(dirname "$0")/.."
sluice="$(realpath "${SLUICE_BIN:-build/rel/sluice}")"
mode="${1:-curve}"
shift || true

state=$(mktemp -d /tmp/sluice-cluster-bench-XXXXXX)
chmod 755 "$state"
source scripts/pg_serve.sh
cleanup() {
  set +e
  pg_stop
  rm -rf "$state"
}
trap cleanup EXIT
pg_start "$state/pg" durable
db=0

# run PIPELINE ITEMS WORKERS [--set ...]: one measured run; prints a table row.
run() {
  local pipeline="$1" items="$2" workers="$3"
  shift 3
  db=$((db + 1))
  pg_as_owner "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U sluice "run$db"
  local url="postgresql://sluice@127.0.0.1:$PG_PORT/run$db"
  seq 1 "$items" | sed 's|^|http://example.com/|' > "$state/urls.txt"
  "$sluice" ingest "$pipeline" --input "$state/urls.txt" --store "$url" "$@" \
    >/dev/null 2>&1
  local cpu_before start end
  cpu_before=$(pg_cpu_seconds)
  start=$(date +%s.%N)
  local pids=()
  for w in $(seq 1 "$workers"); do
    /usr/bin/time -f "%U %S" -o "$state/time.$w" \
      "$sluice" worker "$pipeline" --store "$url" --workdir "$state/w$db-$w" \
      --exit-when-done --status-interval 0 "$@" >"$state/log.$w" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  end=$(date +%s.%N)
  local pg_cpu worker_cpu
  pg_cpu=$(python3 -c "print(f'{$(pg_cpu_seconds) - $cpu_before:.2f}')")
  worker_cpu=$(cat "$state"/time.* | awk '{s += $1 + $2} END {printf "%.2f", s}')
  rm -f "$state"/time.*
  python3 - "$items" "$workers" "$start" "$end" "$worker_cpu" "$pg_cpu" <<'PY'
import sys
items, workers = int(sys.argv[1]), int(sys.argv[2])
start, end, worker_cpu, pg_cpu = map(float, sys.argv[3:7])
wall = end - start
print(f"| {workers} | {items:,} | {wall:.1f} s | {items / wall:,.0f} | "
      f"{worker_cpu:.1f} s ({100 * worker_cpu / wall:.0f}% of a core) | "
      f"{pg_cpu:.1f} s ({100 * pg_cpu / wall:.1f}% of a core, "
      f"{1e6 * pg_cpu / items:.1f} µs per item) |")
PY
}

echo "| workers | items | wall | items/s | workers' CPU | PostgreSQL CPU |"
echo "|---|---|---|---|---|---|"
case "$mode" in
  curve)
    per_worker="${1:-20000}"
    shift || true
    for w in "${@:-1 2 4 8}"; do
      for n in $w; do
        run pipelines/examples/sleep.yaml $((per_worker * n)) "$n" \
          --set stages.wait.ms=50 --set stages.wait.max_in_flight=100 --set batch_size=200
      done
    done
    ;;
  ceiling)
    items="${1:-1000000}"
    shift || true
    for w in "${@:-1 2 4}"; do
      for n in $w; do run pipelines/examples/noop.yaml "$items" "$n"; done
    done
    ;;
  sustained)
    seconds="${1:-300}"
    run pipelines/examples/sleep.yaml $((3360 * seconds)) 4 \
      --set stages.wait.ms=50 --set stages.wait.max_in_flight=42
    ;;
  *)
    echo "usage: $0 curve|ceiling|sustained [...]" >&2
    exit 2
    ;;
esac
