#!/usr/bin/env bash
# The whole test suite, as CI runs it, on a fresh Debian 12 machine:
#   1. installs the packages (scripts/install-deps.sh),
#   2. builds with warnings as errors and runs every test,
#   3. builds with AddressSanitizer + UndefinedBehaviorSanitizer and runs every test,
#   4. builds with ThreadSanitizer and runs the runtime's tests (core, cache, stages,
#      worker),
#   5. builds the fuzz targets (clang) and runs each for 60 s (scripts/fuzz.sh).
# Each phase prints how long it took.
# Usage: scripts/test.sh [build-root]   (default: build/ci)
set -euo pipefail
cd "$(dirname "$0")/.."
root="${1:-build/ci}"
jobs="$(nproc)"

phase_started=$SECONDS
phase() {  # ends the current phase (printing its duration) and names the next
  [ -n "${phase_name:-}" ] && echo "   $phase_name: $((SECONDS - phase_started)) s"
  phase_started=$SECONDS
  phase_name="$1"
  [ -n "$phase_name" ] && echo "== $phase_name"
  return 0
}

phase "packages"
scripts/install-deps.sh

configure() {  # dir, extra cmake args...
  local dir="$1"; shift
  cmake -S . -B "$dir" -DSLUICE_WERROR=ON "$@" >/dev/null
}

phase "release build (warnings are errors)"
configure "$root/release" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$root/release" -j "$jobs"
phase "release tests"
ctest --test-dir "$root/release" --output-on-failure -j "$jobs"

# The sanitizer builds skip the AVX2 copy of the HOG kernel (see CMakeLists.txt).
phase "AddressSanitizer + UndefinedBehaviorSanitizer build"
configure "$root/asan" -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=address \
  -DSLUICE_BUILD_BENCHMARKS=OFF -DSLUICE_HOG_AVX2=OFF
cmake --build "$root/asan" -j "$jobs"
phase "AddressSanitizer + UndefinedBehaviorSanitizer tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$root/asan" --output-on-failure -j "$jobs"

phase "ThreadSanitizer build (runtime: core, cache, stages and the worker)"
configure "$root/tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_SANITIZE=thread \
  -DSLUICE_BUILD_BENCHMARKS=OFF -DSLUICE_HOG_AVX2=OFF
cmake --build "$root/tsan" -j "$jobs" --target sluice_core_tests sluice_cache_tests \
  sluice_stages_tests sluice_integration_tests
phase "ThreadSanitizer tests"
export TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/sanitizers/tsan.supp"
ctest --test-dir "$root/tsan" --output-on-failure -j "$jobs" --no-tests=error -L 'core|cache|stages'
ctest --test-dir "$root/tsan" --output-on-failure -j "$jobs" --no-tests=error \
  -R '^(WorkerTest|WorkerOutputTest)\.'

phase "fuzzing (libFuzzer + ASan + UBSan, 60 s per target)"
scripts/fuzz.sh 60 "$root/fuzz"

phase ""
echo "== all tests passed in $SECONDS s"
