# Sourced by bench/images_bench.sh and bench/fetch_ab.sh: the URL list and the wrk
# script for a corpus of IMAGES files named 000000.jpg ... served on loopback.
#
#   corpus_urls PORT IMAGES URLS [QUERY] > FILE   # URLS lines, each file in turn,
#                                                 # "?QUERYn=I" to keep them distinct
#   corpus_wrk_script IMAGES > FILE               # a wrk script walking the same files

corpus_urls() {
  python3 - "$1" "$2" "$3" "${4:-}" <<'PY'
import sys
port, images, urls = map(int, sys.argv[1:4])
query = sys.argv[4]
for i in range(urls):
    print(f"http://127.0.0.1:{port}/{i % images:06d}.jpg?{query}n={i}")
PY
}

corpus_wrk_script() {
  cat <<LUA
counter = 0
request = function()
  counter = (counter + 1) % $1
  return wrk.format(nil, string.format("/%06d.jpg", counter))
end
LUA
}
