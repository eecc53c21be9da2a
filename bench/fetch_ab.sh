#!/usr/bin/env bash
# A/B of fetch settings or of builds: download-only runs (download.yaml without its
# sha256 stage, no outputs) with each `--set` value in turn, alternating, for ROUNDS
# rounds, against one nginx on loopback serving a generated corpus; wrk on the same
# files starts each round (the server's ceiling at that moment: the machine is shared
# and noisy). A SETTING of the form bin=PATH runs the sluice binary at PATH instead,
# with the default settings: the way to compare two builds.
#
#   bench/fetch_ab.sh BUILD_DIR ROUNDS SETTING...
#   bench/fetch_ab.sh build/rel 3 stages.fetch.io_threads=1 stages.fetch.io_threads=2
#   bench/fetch_ab.sh build/rel 3 bin=/tmp/sluice-before bin=build/rel/sluice
#
# BUILD_DIR needs sluice and sluice-make-corpus. Prints one line per run: images/s,
# and the sluice process's CPU time per image (user + system).
set -euo pipefail
build="$(cd "$1" && pwd)"; rounds="$2"; shift 2
src="$(cd "$(dirname "$0")/.." && pwd)"
source "$src/scripts/nginx_serve.sh"
source "$src/bench/corpus_urls.sh"
work="$(mktemp -d /tmp/sluice-fetch-ab-XXXXXX)"
chmod 755 "$work"
trap 'nginx_stop; rm -rf "$work"' EXIT
images=3000; urls=30000

"$build/sluice-make-corpus" /usr/share/doc/libdlib19.1/examples/faces "$work/corpus" \
  "$images" 200 1200 >/dev/null
nginx_start "$work/corpus" "$work/nginx"
corpus_urls "$NGINX_PORT" "$images" "$urls" > "$work/urls.txt"
corpus_wrk_script "$images" > "$work/rotate.lua"
sed '/type: sha256/d' "$src/pipelines/download.yaml" > "$work/fetch-only.yaml"
common=(--set allow_private_networks=true --set output.layout=none
        --set output.metadata=false --set output.stats=false
        --set stages.fetch.max_host_connections=64)

echo "corpus: $images JPEGs; $urls URLs; $(nproc) cores; $(lscpu | sed -n 's/^Model name: *//p')"
for round in $(seq "$rounds"); do
  wrk -t1 -c64 -d3s -s "$work/rotate.lua" "http://127.0.0.1:$NGINX_PORT/" |
    awk -v r="$round" '/Requests\/sec/ {printf "round %d  wrk -c64: %d req/s\n", r, $2}'
  for setting in "$@"; do
    sluice="$build/sluice"; set_args=(--set "$setting")
    if [[ "$setting" == bin=* ]]; then sluice="${setting#bin=}"; set_args=(); fi
    rm -rf "$work/run"
    "$sluice" ingest "$work/fetch-only.yaml" --input "$work/urls.txt" \
      --workdir "$work/run" "${common[@]}" "${set_args[@]}" >/dev/null 2>&1
    t0=$(date +%s.%N)
    /usr/bin/time -o "$work/cpu" -f "%U %S" "$sluice" run "$work/fetch-only.yaml" \
      --workdir "$work/run" --status-interval 0 "${common[@]}" "${set_args[@]}" \
      >/dev/null 2>&1
    t1=$(date +%s.%N)
    read -r user system < "$work/cpu"
    python3 -c "print('round $round  $setting:', round($urls / ($t1 - $t0)), 'images/s,',
                      round(($user + $system) * 1e6 / $urls), 'us CPU per image')"
  done
done
