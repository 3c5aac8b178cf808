#!/usr/bin/env bash
# bench/lib/flags.sh: what bench_common_flag sets, and how each bench script that uses it
# answers --help and bad flags (exit 0 / exit 2 with one line naming the script). Nothing is
# built or started: every case ends while the flags are parsed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }

# The function itself, in a subshell per case (it exits on errors).
check_sets() {  # EXPECTED SHIFT FLAG...: the variables after one call, as "BUILD OUT BUILD_IT NICE SECS"
  local expected=$1 shift_expected=$2 got
  shift 2
  got=$(cd /tmp && source "$ROOT/bench/lib/flags.sh" && BUILD=b OUT=o BUILD_IT=1 NICE=0 SECS=5 &&
        declare -A INT_FLAGS=([--secs]=SECS) && bench_common_flag t.sh "$@" &&
        echo "$BUILD $OUT $BUILD_IT $NICE $SECS $BENCH_SHIFT")
  [[ $got == "$expected $shift_expected" ]] || fail "bench_common_flag $*: got '$got', want '$expected $shift_expected'"
}
check_sets "/tmp/x o 1 0 5" 2 --build-dir x
check_sets "b /y 1 0 5" 2 --out /y o
check_sets "b o 0 0 5" 1 --no-build --secs 3
check_sets "b o 1 -5 5" 2 --nice -5
check_sets "b o 1 0 12" 2 --secs 12 --out z

# check SCRIPT EXPECTED_RC STDERR_REGEX ARGS...: exit code and the one stderr line.
check() {
  local script=$1 rc_want=$2 re=$3 out err rc
  shift 3
  out=$(timeout 60 bash "$ROOT/$script" "$@" 2>"$TMPDIR_/err"); rc=$?
  err=$(cat "$TMPDIR_/err")
  if [[ $rc != "$rc_want" ]]; then fail "$script $*: exit $rc, want $rc_want; stderr: $err"; return; fi
  if [[ $rc_want == 0 ]]; then
    [[ $out == *usage* || $out == *"bench/"* ]] || fail "$script $*: no usage on stdout: $out"
  elif [[ $(grep -c . <<<"$err") != 1 || ! $err =~ $re ]]; then
    fail "$script $*: stderr '$err', want one line matching '$re'"
  fi
}
TMPDIR_=$(mktemp -d)
trap 'rm -rf "$TMPDIR_"' EXIT
# The name each script puts before its errors (portforward/run.sh's has always been run.sh).
declare -A NAME=([bench/run.sh]=run.sh [bench/router/run.sh]=router/run.sh
  [bench/udp/run.sh]=udp/run.sh [bench/portforward/run.sh]=run.sh)
for script in "${!NAME[@]}"; do
  name=${NAME[$script]}
  check "$script" 0 "" --help
  check "$script" 2 "^$name: unknown option '--bogus'; see --help$" --bogus
  check "$script" 2 "^$name: --out needs a value; see --help$" --out
  check "$script" 2 "^$name: --build-dir needs a value; see --help$" --build-dir ""
done
for script in bench/run.sh bench/router/run.sh bench/udp/run.sh; do
  name=${NAME[$script]}
  check "$script" 2 "^$name: --secs wants a positive integer, got '0'$" --secs 0
  check "$script" 2 "^$name: --nice wants an integer, got 'x'$" --nice x
done
check bench/portforward/run.sh 2 "^run.sh: --mib wants a positive integer, got '-1'$" --mib -1
check bench/portforward/run.sh 2 "^run.sh: unknown option '--nice'; see --help$" --nice 1
check bench/router/run.sh 2 "^router/run.sh: unknown option '--reps'; see --help$" --reps 2
check bench/run.sh 2 "^run.sh: --peers needs a value; see --help$" --peers

if ((failed)); then echo "$failed check(s) failed"; exit 1; fi
echo "bench flags: every check passed"
