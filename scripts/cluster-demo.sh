#!/usr/bin/env bash
# A sluice cluster on one machine, everything on loopback and thrown away at the end:
# a PostgreSQL server (the store every worker shares), a memcached server (the
# shared content cache in front of fetch), and the demo corpus of face photos served
# by nginx. It ingests once, then runs pipelines/faces-split.yaml with two workers of
# the `download` group and one of the `detect` group until every batch is done,
# shows `sluice status` while they run and at the end, and stops everything.
#
# On real machines the same commands run on many hosts (docs/cluster.md): the store
# URL (with its password) comes from $SLUICE_STORE, never the command line.
#
# Usage: scripts/cluster-demo.sh [copies]   (each photo listed this many times, default 20)
# SLUICE_BIN=path/to/sluice uses that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
copies="${1:-20}"

scripts/install-deps.sh
if [ -n "${SLUICE_BIN:-}" ]; then
  sluice="$(realpath "$SLUICE_BIN")"
else
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF \
    -DSLUICE_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build build/release -j "$(nproc)" --target sluice_cli
  sluice="$PWD/build/release/sluice"
fi

out="$PWD/out/cluster-demo"
rm -rf "$out"
mkdir -p "$out/corpus" "$out/logs"
chmod 755 "$out" "$out/corpus"
free_port() {
  python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

pids=()
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  pg_stop
  nginx_stop
}
source scripts/nginx_serve.sh
source scripts/pg_serve.sh
trap cleanup EXIT

echo "== PostgreSQL (throwaway, in $out/pg)"
pg_start "$out/pg"
# Workers read the store's address from the environment (on real machines with its
# password: see deploy/sluice-worker@.service).
export SLUICE_STORE="$PG_URL"
echo "   $SLUICE_STORE"

echo "== memcached (shared content cache)"
mc_port=$(free_port)
memcached_user=()
[ "$(id -u)" -eq 0 ] && memcached_user=(-u nobody)
memcached -l 127.0.0.1 -p "$mc_port" -m 256 "${memcached_user[@]}" &
pids+=($!)
echo "   127.0.0.1:$mc_port"

photos=/usr/share/doc/libdlib19.1/examples/faces
cp "$photos"/*.jpg "$out/corpus/"
nginx_start "$out/corpus" "$out/nginx"
echo "== serving $(ls "$out/corpus"/*.jpg | wc -l) photos on http://127.0.0.1:$NGINX_PORT/"
# Each photo under several URLs, and a second time under the same URL: the repeats
# are served by the cache, not downloaded again.
{
  printf 'url\tcaption\n'
  for pass in 1 2; do
    for i in $(seq 1 "$copies"); do
      for photo in "$out/corpus"/*.jpg; do
        name=$(basename "$photo")
        printf 'http://127.0.0.1:%s/%s?copy=%s\t%s, copy %s\n' "$NGINX_PORT" "$name" "$i" \
          "${name%.jpg}" "$i"
      done
    done
  done
  printf 'http://127.0.0.1:%s/missing.jpg\tno such photo\n' "$NGINX_PORT"
} > "$out/urls.tsv"

# The same settings for every command: they are part of the pipeline's fingerprint.
settings=(--set allow_private_networks=true --set batch_size=50
          --set "stages.fetch.memcached=[127.0.0.1:$mc_port]")
pipeline=pipelines/faces-split.yaml
blobs="$out/blobs"  # on real machines: a directory every worker mounts

echo "== sluice ingest"
"$sluice" ingest "$pipeline" --input "$out/urls.tsv" "${settings[@]}"

echo "== 2 download workers, 1 detect worker (logs in $out/logs)"
for name in download-1 download-2; do
  "$sluice" worker "$pipeline" --group download --blobs "$blobs" --exit-when-done \
    --workdir "$out/$name" --status-interval 0 "${settings[@]}" \
    >"$out/logs/$name.log" 2>&1 &
  pids+=($!)
done
"$sluice" worker "$pipeline" --group detect --blobs "$blobs" --exit-when-done \
  --workdir "$out/detect" --status-interval 0 "${settings[@]}" \
  >"$out/logs/detect.log" 2>&1 &
detect=$!
pids+=($detect)

sleep 6
echo "== sluice status (while the workers run)"
"$sluice" status
failed=0
for pid in "${pids[@]:1}"; do wait "$pid" || failed=1; done
pids=("${pids[0]}")  # memcached, stopped by cleanup
[ "$failed" -eq 0 ] || { echo "a worker failed: see $out/logs"; tail -n 5 "$out"/logs/*.log; exit 1; }

echo "== sluice status (done)"
"$sluice" status
"$sluice" export --output "$out/results.jsonl"
echo "== where things are"
echo "  images + face boxes: $out/detect/output/shards/*.tar (written by the detect worker)"
echo "  all results:         $out/results.jsonl (sluice export)"
echo "  worker logs:         $out/logs/"
