#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, coverage in the
# libraries too) and runs each one for a while, one after the other, on a copy of its
# seed corpus (tests/fuzz/corpus/<target>; what the run adds stays in the build
# directory). Prints executions per target; fails if any target found a crash, a
# sanitizer report, a leak, an input slower than 10 s or an allocation over the
# limits. Inputs that failed are kept in <build-dir>/artifacts.
# Usage: scripts/fuzz.sh [seconds-per-target] [build-dir]   (defaults: 30, build/fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
build="${2:-build/fuzz}"

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSLUICE_BUILD_FUZZERS=ON -DSLUICE_WERROR=ON -DSLUICE_BUILD_TESTS=OFF \
  -DSLUICE_BUILD_BENCHMARKS=OFF -DSLUICE_HOG_AVX2=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target sluice_fuzzers

# The longest input each target is given: a few lines of an input file, one JSON
# line, the first KiB of an image, a small image with its EXIF block, a header
# line, a pipeline file, a few --set, a few encoded records.
targets=(input_lines json_line line_text image_header exif http_headers pipeline_config
  config_override record_codec expr)
declare -A max_len=(
  [input_lines]=4096 [json_line]=2048 [line_text]=512 [image_header]=1024 [exif]=8192
  [http_headers]=512 [pipeline_config]=4096 [config_override]=1024 [record_codec]=8192
  [expr]=512
)

# Symbolized stack traces in the reports (llvm-14 from install-deps.sh).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

artifacts="$build/artifacts"
mkdir -p "$artifacts"
failed=()
printf "%-18s %12s %9s %8s %8s\n" target executions exec/s coverage corpus
for target in "${targets[@]}"; do
  corpus="$build/corpus/$target"
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp tests/fuzz/corpus/"$target"/* "$corpus"/
  args=(-max_total_time="$seconds" -max_len="${max_len[$target]}" -timeout=10
    -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1
    -artifact_prefix="$artifacts/$target-")
  [ -f "tests/fuzz/$target.dict" ] && args+=(-dict="tests/fuzz/$target.dict")
  log="$build/$target.log"
  if "$build/${target}_fuzzer" "${args[@]}" "$corpus" >"$log" 2>&1; then
    executions="$(awk '/stat::number_of_executed_units/ {print $2}' "$log")"
    speed="$(awk '/stat::average_exec_per_sec/ {print $2}' "$log")"
    coverage="$(grep -Eo 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)"
    printf "%-18s %12s %9s %8s %8s\n" "$target" "$executions" "$speed" "$coverage" \
      "$(find "$corpus" -type f | wc -l)"
  else
    printf "%-18s FAILED (log: %s)\n" "$target" "$log"
    grep -E -A 30 '^==[0-9]+==|fuzz check failed|runtime error' "$log" | head -n 60 || true
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}; inputs in $artifacts"
  exit 1
fi
echo "fuzz: no target found a problem in ${seconds} s each"
