#!/usr/bin/env bash
# Builds lpk and runs the whole test suite (unit and end-to-end).
#   tools/test.sh              RelWithDebInfo build in build/
#   tools/test.sh --sanitize   AddressSanitizer+UBSan build in build-asan/ (skips "heavy" tests)
#   tools/test.sh --fuzz SECS  builds the libFuzzer targets with clang and runs each for SECS
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh >/dev/null

mode=${1:-}
jobs=$(nproc)
# ccache when installed (tools/install-deps.sh installs it): a second build of the same sources,
# in any build directory of any clone under the same base_dir, costs seconds.
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

# ctest hides the output of tests that pass or skip; print why each skipped one could not run.
run_ctest() {
  local dir=$1; shift
  local rc=0
  ctest --test-dir "$dir" --output-on-failure --timeout 900 "$@" || rc=$?
  local log=$dir/Testing/Temporary/LastTest.log
  if [[ -f $log ]]; then
    awk '/^[0-9]+\/[0-9]+ Test: / { name = $3 }
         /: Skipped$/ { getline reason; print "skipped: " name ": " reason }
         /^SKIP(PED)?:/ { print "skipped: " name ": " $0 }' "$log"
  fi
  return "$rc"
}
case "$mode" in
  "")
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
    cmake --build build -j"$jobs"
    # Tests in parallel; the e2e tests that need the machine to themselves (rollouts, timing,
    # port 53) are RUN_SERIAL.
    run_ctest build -j"$jobs"
    ;;
  --sanitize)
    # Only what the tests of this run use: no benchmark drivers.
    # The release tree's lpk-kubesim, when there is one, is the tests' cluster: it is tested
    # itself in the release run, and not building it again here saves a quarter of this build.
    kubesim=()
    if [[ -x build/tools/kubesim/lpk-kubesim ]]; then
      kubesim=(-DLPK_KUBESIM_EXECUTABLE="$PWD/build/tools/kubesim/lpk-kubesim")
    fi
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DLPK_SANITIZE=ON -DLPK_BENCH=OFF \
      "${kubesim[@]}" "${launcher[@]}" >/dev/null
    cmake --build build-asan -j"$jobs"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
      run_ctest build-asan -LE heavy -j"$jobs"
    ;;
  --fuzz)
    secs=${2:-30}
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DLPK_FUZZ=ON -DLPK_BENCH=OFF "${launcher[@]}" >/dev/null
    cmake --build build-fuzz -j"$jobs" --target lpk_fuzzers
    # One target per core; each writes its own log, printed in full when the target fails.
    logs=build-fuzz/logs; mkdir -p "$logs"
    fuzz_one() {
      local f=$1 secs=$2 name corpus seeds
      name=$(basename "$f")
      corpus=build-fuzz/corpus/$name; mkdir -p "$corpus"
      seeds=tests/fuzz/corpus/$name
      if "$f" -max_total_time="$secs" -print_final_stats=0 "$corpus" \
           $( [[ -d $seeds ]] && echo "$seeds" ) >"build-fuzz/logs/$name.log" 2>&1; then
        echo "fuzz: $name ran ${secs}s: $(tail -1 "build-fuzz/logs/$name.log")"
      else
        echo "fuzz: $name FAILED; its log:"; tail -60 "build-fuzz/logs/$name.log"; return 1
      fi
    }
    export -f fuzz_one
    find build-fuzz/tests/fuzz -maxdepth 1 -name 'fuzz_*' -type f -executable -print0 | sort -z |
      xargs -0 -P "$jobs" -I{} bash -c 'fuzz_one "$1" "$2"' _ {} "$secs"
    ;;
  *) echo "usage: tools/test.sh [--sanitize | --fuzz SECONDS]" >&2; exit 2 ;;
esac
