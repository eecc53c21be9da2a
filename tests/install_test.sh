#!/usr/bin/env bash
# The installed package works for a program of one's own: installs this build into a
# temporary prefix, builds examples/custom_stage against it with find_package(sluice)
# (nothing but the example is compiled), runs the example's pipeline twice, and checks
# what it printed. Registered with CTest by CMakeLists.txt (label `install`).
# Usage: tests/install_test.sh CMAKE BUILD_DIR SOURCE_DIR CXX_COMPILER
set -euo pipefail
cmake="$1" build="$2" source="$3" cxx="$4"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/sluice-install-test-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

fail() { echo "install_test: $*" >&2; exit 1; }
# expect FILE TEXT: FILE holds the line TEXT (a fixed string).
expect() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "no line with '$2' in $1"; }; }

"$cmake" --install "$build" --prefix "$tmp/prefix" >/dev/null
[ -f "$tmp/prefix/include/sluice/pipeline.h" ] || fail "include/sluice/pipeline.h not installed"
[ -x "$tmp/prefix/bin/sluice" ] || fail "bin/sluice not installed"

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
"$cmake" -S "$source/examples/custom_stage" -B "$tmp/build" \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log" >&2; fail "the example does not configure"; }
"$cmake" --build "$tmp/build" -j 2 >"$tmp/build.log" 2>&1 ||
  { cat "$tmp/build.log" >&2; fail "the example does not build"; }

example="$tmp/build/custom_stage"
pipeline="$source/examples/custom_stage/pipeline.yaml"
urls="$source/examples/custom_stage/urls.txt"
"$example" "$pipeline" "$urls" "$tmp/work" >"$tmp/first.out" 2>"$tmp/first.err" ||
  { cat "$tmp/first.out" "$tmp/first.err" >&2; fail "the example's run failed"; }
out="$tmp/first.out"
expect "$out" "registering 'filter' again is refused"
expect "$out" "pipeline custom-stage-example: 4 items, 4 processed now: 2 ok, 1 failed, 1 filtered"
expect "$out" 'item 1 https://www.Example.com/images/cat.jpg: ok {"host":"www.example.com"}'
expect "$out" 'item 2 http://user@images.example.org:8080/dog.png?size=large: ok {"host":"images.example.org"}'
expect "$out" "item 3 https://tracker.example.net/pixel.gif: filtered"
expect "$out" "item 4 not a url: invalid_url the URL has no host"
expect "$tmp/first.err" "info: input $urls: 4 items"
ls "$tmp/work/output/metadata/"*.jsonl >/dev/null || fail "no metadata written"

# Again on the same workdir: nothing left to do, the same results.
"$example" "$pipeline" "$urls" "$tmp/work" >"$tmp/second.out" 2>"$tmp/second.err" ||
  { cat "$tmp/second.out" "$tmp/second.err" >&2; fail "the example's second run failed"; }
expect "$tmp/second.out" "4 items, 0 processed now: 2 ok, 1 failed, 1 filtered"
expect "$tmp/second.err" "already ingested"
echo "install_test: ok"
