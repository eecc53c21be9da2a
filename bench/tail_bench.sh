#!/usr/bin/env bash
# The web's tail: pipelines/download.yaml over URLS loopback URLs (JPEGs from nginx),
# once with none hanging and once with every 100th URL going to sluice-fault-server
# with a response that never comes (it ends at the fetch's own limits: three 30 s
# attempts), in the same run. And, as the before, the same hanging run with the
# in-flight budget counted in batches, as sluice did before records were counted
# (--set open_batches=N, N = the in-flight batches: a batch then takes a slot until
# its slowest record is done).
#
# A fourth run is the hanging list with outputs on (WebDataset shards of the
# downloaded bytes, metadata, stats): the finished records of the batches waiting
# on their stragglers are then held, up to max_held_bytes, and spilled to disk past
# it, so its peak RSS shows that memory stays bounded with outputs too.
#
# Reports per run: the seconds until every normal URL was done (from the status
# line, printed every second), the rate over them, the whole run's seconds, how long
# the run went on after the last normal item, and the peak RSS.
#
# Usage: bench/tail_bench.sh BUILD_DIR [images] [urls]   (default 2000, 20000)
#        RUNS="no-hang webdataset" (environment) runs only those: no-hang, hang,
#        webdataset, batch-budget (the last takes ~4 item deadlines, ~8 minutes)
# BUILD_DIR needs sluice, sluice-make-corpus and sluice-fault-server.
set -euo pipefail
build="$(cd "$1" && pwd)"; images="${2:-2000}"; urls="${3:-20000}"
src="$(cd "$(dirname "$0")/.." && pwd)"
sluice="$build/sluice"
source "$src/scripts/nginx_serve.sh"
work="$(mktemp -d /tmp/sluice-tail-XXXXXX)"
chmod 755 "$work"
fault_pid=""
cleanup() {
  nginx_stop
  [ -n "$fault_pid" ] && kill "$fault_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$build/sluice-make-corpus" /usr/share/doc/libdlib19.1/examples/faces "$work/corpus" \
  "$images" 200 1200 >/dev/null
nginx_start "$work/corpus" "$work/nginx"
mkdir -p "$work/fault"
"$build/sluice-fault-server" --root "$work/fault" --port-file "$work/fault.port" &
fault_pid=$!
for _ in $(seq 100); do [ -s "$work/fault.port" ] && break; sleep 0.1; done
fault_port=$(cat "$work/fault.port")

python3 - "$NGINX_PORT" "$fault_port" "$images" "$urls" "$work" <<'PY'
import sys
port, fault_port, images, urls = map(int, sys.argv[1:5])
work = sys.argv[5]
with open(f"{work}/plain.txt", "w") as plain, open(f"{work}/tail.txt", "w") as tail:
    for i in range(urls):
        url = f"http://127.0.0.1:{port}/{i % images:06d}.jpg?n={i}"
        plain.write(url + "\n")
        # Every 100th: a server that accepts and never answers, on one of 20 host
        # names (as on the web, the stragglers are on other hosts than the rest:
        # sharing the normal URLs' host, they would take its connection slots).
        hang = f"http://hang{i % 20}.test:{fault_port}/gen/bytes?size=10&delay=600000&n={i}"
        tail.write((hang if i % 100 == 50 else url) + "\n")
resolve = ",".join(f"hang{h}.test:{fault_port}:127.0.0.1" for h in range(20))
open(f"{work}/resolve", "w").write(f"[{resolve}]")
PY
normal_items=$((urls - urls / 100))

# run NAME INPUT EXTRA... : prints a table row.
run() {
  local name="$1" input="$2"; shift 2
  local args=(--set allow_private_networks=true --set output.layout=none
              --set output.metadata=false --set output.stats=false
              --set stages.fetch.max_host_connections=64
              --set "stages.fetch.resolve=$(cat "$work/resolve")" "$@")
  "$sluice" ingest "$src/pipelines/download.yaml" --input "$input" \
    --workdir "$work/$name" "${args[@]}" >/dev/null
  local t0; t0=$(date +%s.%N)
  /usr/bin/time -v "$sluice" run "$src/pipelines/download.yaml" --workdir "$work/$name" \
    --status-interval 1 "${args[@]}" 2>&1 >/dev/null |
    while IFS= read -r line; do echo "$(date +%s.%N) $line"; done > "$work/$name.log"
  python3 - "$work/$name.log" "$t0" "$normal_items" "$name" <<'PY'
import re, sys
log, t0, normal, name = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lines = open(log).read().splitlines()
normal_done = None
end = float(lines[-1].split(" ", 1)[0])
rss = 0
for line in lines:
    stamp, text = line.split(" ", 1)
    m = re.search(r"done (\d+)/", text)
    if m and normal_done is None and int(m.group(1)) >= normal:
        normal_done = float(stamp) - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        rss = int(m.group(1)) // 1024
total = end - t0
if normal_done is None:
    normal_done = total
print(f"| {name} | {normal_done:.1f} s | {normal / normal_done:,.0f} items/s | "
      f"{total:.1f} s | {total - normal_done:.1f} s | {rss} MiB |")
PY
}

echo "$urls URLs ($images JPEGs from nginx), $(nproc) cores; $(lscpu | sed -n 's/^Model name: *//p')" >&2
echo
echo "| run | normal items done after | rate over them | whole run | run after the last normal item | peak RSS |"
echo "|---|---|---|---|---|---|"
runs="${RUNS:-no-hang hang webdataset batch-budget}"
want() { [[ " $runs " == *" $1 "* ]]; }
if want no-hang; then run no-hang "$work/plain.txt"; fi
if want hang; then run one-percent-hang "$work/tail.txt"; fi
if want webdataset; then
  run one-percent-hang-webdataset "$work/tail.txt" --set output.layout=webdataset \
    --set output.image_field=body --set output.metadata=true --set output.stats=true
  echo "  webdataset run: $(find "$work/one-percent-hang-webdataset/output" -name '*.tar' | wc -l) shards, $(du -sm "$work/one-percent-hang-webdataset/output" | cut -f1) MiB written" >&2
fi
if want batch-budget; then
  run one-percent-hang-batch-budget "$work/tail.txt" --set open_batches=6
fi
