#!/usr/bin/env bash
# Whole-run benchmarks of the image pipelines on loopback, each against a comparison
# measured in the same run (the machine is shared and noisy: compare ratios).
#
#   download   fetch alone, and pipelines/download.yaml (fetch + sha256), without
#              outputs  vs  wrk on the same nginx, same files (the server's own
#              ceiling on this machine); fetch alone also over 3x the URLs, where the
#              process's start and end weigh a third as much
#   img2dataset pipelines/img2dataset.yaml (fetch, decode, resize 256, encode, tar)
#              vs  bench/img2dataset_baseline.py (img2dataset's loop: a download
#              thread pool, one decode/resize/encode at a time, a process per core)
#   faces      pipelines/faces.yaml (fetch, decode, resize 640, HOG faces, encode, tar)
#              and pipelines/faces-fast.yaml (the same with BlazeFace), each
#              vs  the CPU-bound ceiling: cores / CPU time per image of its CPU stages
#              run in isolation on the same corpus (sluice-image-cost)
#   split      pipelines/faces-split.yaml (faces.yaml in two stage groups, run side by
#              side in one process, batches passed through the blob directory)
#              vs  pipelines/faces.yaml, the first face_urls URLs each
#   metrics    download only and faces.yaml with --metrics-addr, /metrics and
#              /api/status scraped every second  vs  the same without: the cost of
#              keeping and serving the metrics (two rounds each, alternating)
#   rss        download with 5,000 transfers in flight (a 500 ms delay per response
#              from sluice-fault-server keeps them in flight), N and 4N URLs: peak RSS
#
# The corpus: IMAGES JPEGs of 200..1,200 px made from the face photos Debian ships
# with dlib, served by nginx (one worker: it shares the 2 cores with sluice).
#
# Usage: bench/images_bench.sh BUILD_DIR [images] [urls] [face_urls]
#        (default 3000, 30000, 2000: the faces pipeline takes the first face_urls URLs)
#        ONLY="rss faces" (environment) runs only those parts: download, img2dataset,
#        faces, split, metrics, rss (split and metrics are not in the default set)
# BUILD_DIR needs sluice, sluice-make-corpus, sluice-image-cost, sluice-fault-server
# (a build with tests and benchmarks on). Prints a Markdown table.
set -euo pipefail
build="$(cd "$1" && pwd)"; images="${2:-3000}"; urls="${3:-30000}"; face_urls="${4:-2000}"
src="$(cd "$(dirname "$0")/.." && pwd)"
sluice="$build/sluice"
source "$src/scripts/nginx_serve.sh"
source "$src/bench/corpus_urls.sh"
work="$(mktemp -d /tmp/sluice-images-XXXXXX)"
chmod 755 "$work"
fault_pid=""
cleanup() {
  nginx_stop
  [ -n "$fault_pid" ] && kill "$fault_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
pybase=/usr/bin/python3   # Debian's, with python3-opencv
only="${ONLY:-download img2dataset faces rss}"
want() { [[ " $only " == *" $1 "* ]]; }

seconds() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
peak_mb() { awk '/Maximum resident/ {printf "%d", $6 / 1024}' "$1"; }

"$build/sluice-make-corpus" /usr/share/doc/libdlib19.1/examples/faces "$work/corpus" \
  "$images" 200 1200 >/dev/null
corpus_mb=$(du -sm "$work/corpus" | cut -f1)

# --- nginx on a free loopback port ------------------------------------------------------
nginx_start "$work/corpus" "$work/nginx"
port=$NGINX_PORT

corpus_urls "$port" "$images" "$urls" > "$work/urls.txt"

# Runs one pipeline over urls.txt (ingest first, not timed); sets $rate, $secs and
# $rss. Flags of `run` alone (not of `ingest`) go in the array run_only.
run_only=()
run_sluice() {  # name pipeline extra-args...
  local name="$1" pipeline="$2"; shift 2
  "$sluice" ingest "$pipeline" --input "$work/urls.txt" --workdir "$work/$name" \
    --set allow_private_networks=true "$@" >/dev/null
  local t0 t1
  t0=$(seconds)
  /usr/bin/time -v "$sluice" run "$pipeline" --workdir "$work/$name" --status-interval 0 \
    --set allow_private_networks=true "$@" "${run_only[@]}" >"$work/$name.out" \
    2>"$work/$name.time"
  t1=$(seconds)
  local ok
  ok=$("$sluice" status --workdir "$work/$name" --json | python3 -c \
    "import json, sys; print(json.load(sys.stdin)['results']['ok'])")
  rate=$(calc "round($urls / ($t1 - $t0))")
  secs=$(calc "round($t1 - $t0, 2)")
  rss=$(peak_mb "$work/$name.time")
  local cpu_share
  cpu_share=$(awk -F': ' '/Percent of CPU/ {print $2}' "$work/$name.time")
  echo "  $name: $ok of $urls ok, $rate items/s, peak RSS $rss MiB, CPU $cpu_share, load $(cut -d' ' -f1 /proc/loadavg)" >&2
}

echo "corpus: $images JPEGs, $corpus_mb MiB; $urls URLs; $(nproc) cores; $(lscpu | sed -n 's/^Model name: *//p')" >&2
echo
echo "| benchmark | sluice | comparison (same run) | ratio | sluice peak RSS |"
echo "|---|---|---|---|---|"

# --- download only ----------------------------------------------------------------------
if want download; then
corpus_wrk_script "$images" > "$work/rotate.lua"
wrk_rate=$(wrk -t1 -c64 -d5s -s "$work/rotate.lua" "http://127.0.0.1:$port/" |
  awk '/Requests\/sec/ {printf "%d", $2}')
# Fetch alone: download.yaml without its sha256 stage.
sed '/type: sha256/d' "$src/pipelines/download.yaml" > "$work/fetch-only.yaml"
run_sluice fetch-only "$work/fetch-only.yaml" --set output.layout=none \
  --set output.metadata=false --set output.stats=false \
  --set stages.fetch.max_host_connections=64
echo "| download only (fetch, no hashing, no outputs) | $rate images/s | wrk -c64: $wrk_rate req/s | $(calc "round($rate / $wrk_rate, 2)") | $rss MiB |"
cp "$work/urls.txt" "$work/all-urls.txt"
corpus_urls "$port" "$images" $((urls * 3)) > "$work/urls.txt"
saved_urls=$urls; urls=$((urls * 3))
run_sluice fetch-only-long "$work/fetch-only.yaml" --set output.layout=none \
  --set output.metadata=false --set output.stats=false \
  --set stages.fetch.max_host_connections=64
echo "| the same, $urls URLs | $rate images/s | wrk -c64: $wrk_rate req/s | $(calc "round($rate / $wrk_rate, 2)") | $rss MiB |"
urls=$saved_urls; cp "$work/all-urls.txt" "$work/urls.txt"
run_sluice download "$src/pipelines/download.yaml" --set output.layout=none \
  --set output.metadata=false --set output.stats=false \
  --set stages.fetch.max_host_connections=64
echo "| download + sha256 (download.yaml, no outputs) | $rate images/s | wrk -c64: $wrk_rate req/s | $(calc "round($rate / $wrk_rate, 2)") | $rss MiB |"

fi
# --- img2dataset's workload ---------------------------------------------------------------
if want img2dataset; then
run_sluice img2dataset "$src/pipelines/img2dataset.yaml" --set output.layout=webdataset \
  --set stages.fetch.max_host_connections=64
read -r base_ok base_failed base_s < <("$pybase" "$src/bench/img2dataset_baseline.py" \
  "$work/urls.txt" "$work/baseline" "$(nproc)" 64)
base_rate=$(calc "round($urls / $base_s)")
echo "  baseline: $base_ok ok, $base_failed failed, $base_rate items/s" >&2
echo "| img2dataset workload (fetch, decode, resize 256 border, jpg 95, tar) | $rate images/s | Python + OpenCV, img2dataset's loop: $base_rate images/s | $(calc "round($rate / $base_rate, 2)") | $rss MiB |"

fi
# --- faces: HOG (faces.yaml) and BlazeFace (faces-fast.yaml), same corpus, same run ----------
if want faces; then
cp "$work/urls.txt" "$work/all-urls.txt"
head -n "$face_urls" "$work/all-urls.txt" > "$work/urls.txt"
saved_urls=$urls; urls=$face_urls
for pipeline in faces faces-fast; do
  "$build/sluice-image-cost" "$src/pipelines/$pipeline.yaml" "$work/corpus" >"$work/cost-$pipeline.txt"
  ceiling=$(awk '/^ceiling/ {print $2}' "$work/cost-$pipeline.txt")
  sed "s/^/  cost $pipeline: /" "$work/cost-$pipeline.txt" >&2
  run_sluice "$pipeline" "$src/pipelines/$pipeline.yaml" --set stages.fetch.max_host_connections=64
  # sluice's own CPU (user + system) per image, and the cores 3,307 images/s would need.
  cpu_ms=$(awk -v n="$urls" '/User time|System time/ {t += $NF} END {printf "%.1f", t * 1000 / n}' \
    "$work/$pipeline.time")
  cores=$(calc "round(3307 * $cpu_ms / 1000)")
  echo "| $pipeline.yaml (fetch, decode, resize 640, $( [ "$pipeline" = faces ] && echo "HOG upsample 1" || echo BlazeFace ), jpg 90, tar) | $rate images/s, $cpu_ms ms CPU per image, $cores cores for 3,307/s | CPU-bound ceiling (sluice-image-cost): $ceiling images/s | $(calc "round($rate / $ceiling, 2)") | $rss MiB |"
  eval "rate_${pipeline//-/_}=$rate"
done
urls=$saved_urls
echo "| faces-fast.yaml against faces.yaml | $rate_faces_fast images/s | $rate_faces images/s | $(calc "round($rate_faces_fast / $rate_faces, 2)") | |"

fi
# --- faces split in two stage groups against faces.yaml in one, same corpus, same run -------
if want split; then
cp "$work/urls.txt" "$work/all-urls.txt"
head -n "$face_urls" "$work/all-urls.txt" > "$work/urls.txt"
saved_urls=$urls; urls=$face_urls
# Batches of 100: with 1,000 the few batches of a short run would leave the second
# group idle for the first one's whole first batch.
for pipeline in faces faces-split; do
  run_sluice "split-$pipeline" "$src/pipelines/$pipeline.yaml" \
    --set stages.fetch.max_host_connections=64 --set batch_size=100
  eval "rate_${pipeline//-/_}=$rate"
  eval "rss_${pipeline//-/_}=$rss"
done
urls=$saved_urls
echo "| faces-split.yaml (download | detect, one process) against faces.yaml | $rate_faces_split images/s | $rate_faces images/s | $(calc "round($rate_faces_split / $rate_faces, 2)") | $rss_faces_split MiB (faces.yaml: $rss_faces MiB) |"

fi
# --- the metrics' cost: with --metrics-addr and a scraper against without, same run ---------
if want metrics; then
mport=$(python3 -c \
  "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
scrape() {  # what a Prometheus and a dashboard would ask, every second
  while true; do
    curl -s -o /dev/null "http://127.0.0.1:$mport/metrics" || true
    curl -s -o /dev/null "http://127.0.0.1:$mport/api/status" || true
    sleep 1
  done
}
sed '/type: sha256/d' "$src/pipelines/download.yaml" > "$work/fetch-only.yaml"
fetch_args=(--set output.layout=none --set output.metadata=false --set output.stats=false
  --set stages.fetch.max_host_connections=64)
cp "$work/urls.txt" "$work/all-urls.txt"
for part in download faces; do
  if [ "$part" = faces ]; then
    head -n "$face_urls" "$work/all-urls.txt" > "$work/urls.txt"
    saved_urls=$urls; urls=$face_urls
    pipeline="$src/pipelines/faces.yaml"; args=(--set stages.fetch.max_host_connections=64)
  else
    pipeline="$work/fetch-only.yaml"; args=("${fetch_args[@]}")
  fi
  for round in 1 2; do
    run_sluice "metrics-off-$part-$round" "$pipeline" "${args[@]}"
    off=$secs; rss_off=$rss
    scrape & scraper=$!
    run_only=(--metrics-addr "127.0.0.1:$mport")
    run_sluice "metrics-on-$part-$round" "$pipeline" "${args[@]}"
    run_only=()
    kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true
    on=$secs
    echo "| $part (round $round), /metrics and /api/status scraped every second | $(calc "round($urls / $on, 1)") items/s ($on s) | without --metrics-addr: $(calc "round($urls / $off, 1)") items/s ($off s) | $(calc "round($off / $on, 3)") | $rss MiB (without: $rss_off MiB) |"
  done
  [ "$part" = faces ] && urls=$saved_urls
done
cp "$work/all-urls.txt" "$work/urls.txt"

fi
# --- peak RSS with 5,000 transfers in flight ------------------------------------------------
if want rss; then
nginx_stop
"$build/sluice-fault-server" --root "$work/corpus" --port-file "$work/fault.port" &
fault_pid=$!
for _ in $(seq 100); do [ -f "$work/fault.port" ] && break; sleep 0.1; done
fport=$(cat "$work/fault.port")
for n in "$urls" $((urls * 4)); do
  corpus_urls "$fport" "$images" "$n" "delay=500&" > "$work/urls.txt"
  saved_urls=$urls; urls=$n
  run_sluice "rss$n" "$src/pipelines/download.yaml" --set output.layout=none \
    --set stages.fetch.max_in_flight=5000 --set stages.fetch.max_host_connections=5000
  urls=$saved_urls
  echo "| 5,000 in flight (500 ms per response), $n URLs | $rate images/s | ceiling 5,000 / 0.5 s = 10,000/s | $(calc "round($rate / 10000, 2)") | $rss MiB |"
done
fi
