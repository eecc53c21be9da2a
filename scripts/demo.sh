#!/usr/bin/env bash
# The main job: installs what is needed, builds sluice, and runs an example pipeline
# over a generated list of URLs, then shows its status and the first results.
# Usage: scripts/demo.sh [items]   (default 50000)
set -euo pipefail
cd "$(dirname "$0")/.."
items="${1:-50000}"

scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF \
  -DSLUICE_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" --target sluice_cli
sluice=build/release/sluice

out=out/demo
mkdir -p "$out"
python3 - "$items" > "$out/urls.txt" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"http://img{i % 50}.example.org/photos/{i}.jpg")
PY

echo "== sluice run (Ctrl-C stops cleanly; the same command resumes)"
"$sluice" run pipelines/examples/flaky.yaml --input "$out/urls.txt" --workdir "$out/work" \
  --status-interval 2
echo "== sluice status"
"$sluice" status --workdir "$out/work"
echo "== sluice export (first 3 rows of $items; all of them in $out/results.jsonl)"
"$sluice" export --workdir "$out/work" --output "$out/results.jsonl"
head -n 3 "$out/results.jsonl"
