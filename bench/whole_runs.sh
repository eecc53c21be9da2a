#!/usr/bin/env bash
# Whole-run benchmarks of the sluice binary, each against a baseline measured in the
# same run (the machine is shared and noisy: compare ratios, not lone times).
#
#   ingest      `sluice ingest` of N plain URLs   vs  sqlite3's own `.import` of the file
#   end_to_end  `sluice run` of 3 no-op stages (ingest excluded, every result committed)
#               vs  sqlite3 inserting the same number of result rows in one transaction
#   sleep       `sluice run` of a 100 ms sleep stage, 10,000 in flight
#               vs  the ceiling 10,000 / 0.1 s = 100,000 items/s
#
# Usage: bench/whole_runs.sh BUILD_DIR [items]   (default 1000000)
# Prints a Markdown table; peak RSS from GNU time.
set -euo pipefail
build="$(cd "$1" && pwd)"; items="${2:-1000000}"
src="$(cd "$(dirname "$0")/.." && pwd)"
sluice="$build/sluice"
work="$(mktemp -d /tmp/sluice-bench-XXXXXX)"
trap 'rm -rf "$work"' EXIT

python3 -c "
import sys
with open('$work/urls.txt', 'w') as f:
    for i in range($items):
        f.write(f'http://img{i % 1000}.example.org/photos/{i:012d}.jpg\n')
"

seconds() { python3 -c "import time; print(time.time())"; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f}')"; }
ratio() { python3 -c "print(f'{($1 / ($3 - $2)) / ($4 / ($6 - $5)):.2f}')"; }
peak_kb() { awk '/Maximum resident/ {print $6}' "$1"; }

echo "| benchmark | items | sluice items/s | baseline items/s | ratio | sluice peak RSS |"
echo "|---|---|---|---|---|---|"

# --- ingest ---------------------------------------------------------------------------
t0=$(seconds)
/usr/bin/time -v "$sluice" ingest "$src/pipelines/examples/noop.yaml" --input "$work/urls.txt" \
  --workdir "$work/ingest" 2> "$work/ingest.time" >/dev/null
t1=$(seconds)
b0=$(seconds)
sqlite3 "$work/baseline-import.db" "PRAGMA journal_mode=WAL;" \
  "CREATE TABLE items(url TEXT);" ".import $work/urls.txt items" >/dev/null
b1=$(seconds)
echo "| ingest (plain URLs into SQLite) | $items | $(rate "$items" "$t0" "$t1") | $(rate "$items" "$b0" "$b1") (sqlite3 .import) | $(ratio "$items" "$t0" "$t1" "$items" "$b0" "$b1") | $(( $(peak_kb "$work/ingest.time") / 1024 )) MiB |"

# --- end to end (ingest excluded) ------------------------------------------------------
"$sluice" ingest "$src/pipelines/examples/noop.yaml" --input "$work/urls.txt" \
  --workdir "$work/e2e" >/dev/null 2>&1
t0=$(seconds)
/usr/bin/time -v "$sluice" run "$src/pipelines/examples/noop.yaml" --workdir "$work/e2e" \
  --status-interval 0 2> "$work/e2e.time" >/dev/null
t1=$(seconds)
b0=$(seconds)
sqlite3 "$work/baseline-results.db" "PRAGMA journal_mode=WAL;" "PRAGMA synchronous=NORMAL;" \
  "CREATE TABLE results(item_id INTEGER PRIMARY KEY, reason TEXT, error TEXT, fields TEXT);" \
  "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $items)
   INSERT INTO results SELECT i, NULL, NULL, NULL FROM n;" >/dev/null
b1=$(seconds)
echo "| end to end: run, 3 no-op stages, results committed | $items | $(rate "$items" "$t0" "$t1") | $(rate "$items" "$b0" "$b1") (sqlite3 bulk insert of result rows) | $(ratio "$items" "$t0" "$t1" "$items" "$b0" "$b1") | $(( $(peak_kb "$work/e2e.time") / 1024 )) MiB |"

# --- sleep 100 ms, 10,000 in flight ----------------------------------------------------
sleep_items=$(( items < 500000 ? items : 500000 ))
head -n "$sleep_items" "$work/urls.txt" > "$work/sleep-urls.txt"
"$sluice" ingest "$src/pipelines/examples/sleep.yaml" --input "$work/sleep-urls.txt" \
  --workdir "$work/sleep" --set stages.wait.ms=100 >/dev/null 2>&1
t0=$(seconds)
/usr/bin/time -v "$sluice" run "$src/pipelines/examples/sleep.yaml" --workdir "$work/sleep" \
  --set stages.wait.ms=100 --status-interval 0 \
  2> "$work/sleep.time" >/dev/null
t1=$(seconds)
echo "| sleep 100 ms, 10,000 in flight | $sleep_items | $(rate "$sleep_items" "$t0" "$t1") | 100,000 (ceiling) | $(python3 -c "print(f'{$sleep_items / ($t1 - $t0) / 100000:.2f}')") | $(( $(peak_kb "$work/sleep.time") / 1024 )) MiB |"
