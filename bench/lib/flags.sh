# The flags the bench scripts share, parsed once (bench/run.sh, router/run.sh, udp/run.sh,
# portforward/run.sh). Every error is one line on stderr, prefixed with the script's name, and
# exit 2.
# shellcheck shell=bash

# bench_need_value PROG FLAG [VALUE...]: exits 2 unless FLAG is followed by a non-empty value.
bench_need_value() {
  [[ $# -ge 3 && -n $3 ]] || { echo "$1: $2 needs a value; see --help" >&2; exit 2; }
}

# bench_common_flag PROG ARGS...: takes the flag at the head of ARGS, one of
#   --build-dir DIR  BUILD (an absolute path)     --out DIR   OUT (an absolute path)
#   --no-build       BUILD_IT=0                   --nice N    NICE (an integer; only in scripts
#                                                             that set NICE before parsing)
#   FLAG N           a positive integer into the variable INT_FLAGS[FLAG] names (an
#                    associative array the script declares, e.g. ([--secs]=SECS))
# and sets BENCH_SHIFT to the number of words it took. Anything else is an unknown option.
bench_common_flag() {
  local prog=$1 flag=$2 var=""
  shift
  # Only a flag-shaped word is looked up: a subscript is expanded, and ARGS are the user's.
  [[ $flag =~ ^--[a-z][a-z0-9-]*$ ]] && var=${INT_FLAGS[$flag]:-}
  BENCH_SHIFT=2
  case $flag in
    --build-dir) bench_need_value "$prog" "$@"; BUILD=$(realpath -m "$2") ;;
    --out) bench_need_value "$prog" "$@"; OUT=$(realpath -m "$2") ;;
    --no-build) BUILD_IT=0; BENCH_SHIFT=1 ;;
    *)
      if [[ $flag == --nice && -v NICE ]]; then
        bench_need_value "$prog" "$@"
        [[ $2 =~ ^-?[0-9]+$ ]] || { echo "$prog: --nice wants an integer, got '$2'" >&2; exit 2; }
        NICE=$2
      elif [[ -n $var ]]; then
        bench_need_value "$prog" "$@"
        [[ $2 =~ ^[0-9]+$ && $2 -gt 0 ]] ||
          { echo "$prog: $flag wants a positive integer, got '$2'" >&2; exit 2; }
        printf -v "$var" '%s' "$2"
      else
        echo "$prog: unknown option '$flag'; see --help" >&2
        exit 2
      fi ;;
  esac
}
