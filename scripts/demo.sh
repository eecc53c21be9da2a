#!/usr/bin/env bash
# The main job: installs what is needed, builds sluice, serves a sample corpus of face
# photos (shipped in Debian's libdlib19.1 package) with nginx on loopback, and runs
# pipelines/faces.yaml over it: download, decode, resize, detect faces, save. Then
# shows the status and where the images, results and stats are.
#
# Usage: scripts/demo.sh [copies]   (each photo is listed this many times, default 50)
# Run it again: the finished workdir is skipped; delete out/demo to start afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
copies="${1:-50}"

scripts/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DSLUICE_BUILD_TESTS=OFF \
  -DSLUICE_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/release -j "$(nproc)" --target sluice_cli
sluice=build/release/sluice

out="$PWD/out/demo"
photos=/usr/share/doc/libdlib19.1/examples/faces
mkdir -p "$out/corpus"
chmod 755 "$out" "$out/corpus"
cp "$photos"/*.jpg "$out/corpus/"
printf 'not an image\n' > "$out/corpus/notes.txt"

source scripts/nginx_serve.sh
trap nginx_stop EXIT
nginx_start "$out/corpus" "$out/nginx"
echo "== serving $(ls "$out/corpus"/*.jpg | wc -l) photos from $photos on http://127.0.0.1:$NGINX_PORT/"

# The input: url and caption columns. The same photo under several URLs (a query
# string makes each one distinct), and two that fail: a missing file (http_4xx) and
# a text file (not_image).
{
  printf 'url\tcaption\n'
  for i in $(seq 1 "$copies"); do
    for photo in "$out/corpus"/*.jpg; do
      name=$(basename "$photo")
      printf 'http://127.0.0.1:%s/%s?copy=%s\t%s, copy %s\n' "$NGINX_PORT" "$name" "$i" \
        "${name%.jpg}" "$i"
    done
  done
  printf 'http://127.0.0.1:%s/missing.jpg\tno such photo\n' "$NGINX_PORT"
  printf 'http://127.0.0.1:%s/notes.txt\tnot a photo\n' "$NGINX_PORT"
} > "$out/urls.tsv"

# The corpus is on loopback, which sluice refuses to contact unless told so.
echo "== sluice run pipelines/faces.yaml (Ctrl-C stops cleanly; the same command resumes)"
"$sluice" run pipelines/faces.yaml --input "$out/urls.tsv" --workdir "$out/work" \
  --set allow_private_networks=true --status-interval 2
echo "== sluice status"
"$sluice" status --workdir "$out/work"
"$sluice" export --workdir "$out/work" --output "$out/results.jsonl"
echo "== where things are"
echo "  images + face boxes: $out/work/output/shards/*.tar (WebDataset: KEY.jpg, KEY.json, KEY.txt)"
echo "  per-item metadata:   $out/work/output/metadata/*.jsonl"
echo "  per-batch stats:     $out/work/output/stats/*.json"
echo "  all results:         $out/results.jsonl (sluice export)"
echo "== first result"
head -n 1 "$out/results.jsonl"
