#!/usr/bin/env bash
# Tunnel benchmark: raw loopback, socat (one relay), ssh -L (ssh + sshd over one connection,
# aes128-gcm) and lpk (lpk-proxy -> tunnel over TCP -> lpk-agent), side by side in one run.
# Measures iperf3 throughput (1 and 8 streams), sockperf 64 B ping-pong latency, new
# connections per second and connect-to-first-byte latency, and resident memory per idle
# stream. Writes bench/results/tunnel.md and tunnel.json, prints the table and draws the charts
# (docs/bench/tunnel-*.svg, bench/plots.py).
#
#   bench/run.sh            full run (about 6 minutes)
#   bench/run.sh --quick    smoke run (about 1 minute; results go to a temp dir, not results/)
#   bench/run.sh --help     all options
#
# Everything stays on 127.0.0.1. Every child is killed on exit; the temp dir is removed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
COMMAND=bench/run.sh
for arg in "$@"; do [[ $arg == *" "* ]] && COMMAND+=" \"$arg\"" || COMMAND+=" $arg"; done
BUILD=${LPK_BUILD_DIR:-$ROOT/build-bench}
SECS=5 REPS=3 IDLE=10000 SOCAT_IDLE=1000 SSH_IDLE=2000 CONC=16 CONN_SECS=3 PEERS="raw socat ssh lpk"
OUT=$ROOT/bench/results BUILD_IT=1 QUICK=0
NICE=0; [[ $(id -u) == 0 ]] && NICE=-10

usage() {
  cat <<EOF
usage: bench/run.sh [--quick] [--secs N] [--reps N] [--idle N] [--socat-idle N] [--ssh-idle N]
                    [--concurrency N] [--conn-secs N] [--peers "raw socat ssh lpk"]
                    [--build-dir DIR] [--no-build] [--out DIR] [--nice N]
  --quick          1 s per test, 1 repetition, 1000 idle streams, results in a temp dir
  --secs N         seconds per iperf3 and sockperf test (default $SECS)
  --reps N         repetitions of every test; the median is reported (default $REPS)
  --idle N         idle streams held for the memory test (default $IDLE)
  --socat-idle N   idle streams for socat, which forks a process per connection (default $SOCAT_IDLE)
  --ssh-idle N     idle streams for ssh -L, which opens channels ever slower as they add up
                   (about 70/s past 8,000 here; default $SSH_IDLE)
  --concurrency N  concurrent connections for the connection-rate test (default $CONC)
  --conn-secs N    seconds per connection-rate test (default $CONN_SECS)
  --peers LIST     which peers to run (default "$PEERS"; also socat2: two socats in series)
  --build-dir DIR  CMake build directory (default \$LPK_BUILD_DIR or build-bench)
  --no-build       use the binaries already in the build directory
  --out DIR        where tunnel.md and tunnel.json go (default bench/results)
  --nice N         autogroup nice of every measured process, each in its own session (default
                   $NICE: -10 as root, so that builds sharing the machine disturb all peers
                   less; 0 to leave it)
EOF
}

source "$ROOT/bench/lib/flags.sh"
declare -A INT_FLAGS=([--secs]=SECS [--reps]=REPS [--idle]=IDLE [--socat-idle]=SOCAT_IDLE
  [--ssh-idle]=SSH_IDLE [--concurrency]=CONC [--conn-secs]=CONN_SECS)
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1; SECS=1; REPS=1; IDLE=1000; SOCAT_IDLE=200; SSH_IDLE=500; CONN_SECS=1; shift ;;
    --peers) bench_need_value run.sh "$@"; PEERS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) bench_common_flag run.sh "$@"; shift "$BENCH_SHIFT" ;;
  esac
done
for p in $PEERS; do
  [[ $p =~ ^(raw|socat|socat2|ssh|lpk)$ ]] ||
    { echo "run.sh: unknown peer '$p' (raw socat socat2 ssh lpk)" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lpk-bench.XXXXXX")
[[ $QUICK == 1 && $OUT == "$ROOT/bench/results" ]] && OUT=$TMP/results
mkdir -p "$OUT"
RESULTS=$TMP/samples.jsonl
: >"$RESULTS"
PIDS=()

source "$ROOT/bench/lib/procs.sh"
source "$ROOT/bench/lib/peers.sh"
source "$ROOT/bench/lib/measure.sh"

stop_all_on_exit run.sh

for tool in iperf3 sockperf socat ssh ssh-keygen python3 jq; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing; run tools/install-deps.sh" >&2; exit 1; }
done
[[ -x /usr/sbin/sshd ]] || { echo "run.sh: /usr/sbin/sshd is missing; run tools/install-deps.sh" >&2; exit 1; }
# The charts are drawn after measuring: find out now, not six minutes later, that they cannot be.
/usr/bin/python3 "$ROOT/bench/plots.py" --check
# 10,000 idle streams need 10,000+ descriptors in each of driver, target, proxy and agent.
ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < IDLE + 200 )); then
  echo "run.sh: ulimit -n is $(ulimit -n), too low for --idle $IDLE; raise the hard limit or lower --idle" >&2
  exit 1
fi

build_binaries
start_targets
log "peers: $PEERS; ${SECS}s per test, $REPS repetition(s), conn-rate ${CONN_SECS}s at concurrency 1 and $CONC"
for p in $PEERS; do start_peer "$p"; done
for rep in $(seq "$REPS"); do
  log "repetition $rep/$REPS"
  for p in $PEERS; do peer_down "$p" || run_iperf "$p" "$rep" 1; done
  for p in $PEERS; do peer_down "$p" || run_iperf "$p" "$rep" 8; done
  for p in $PEERS; do peer_down "$p" || run_sockperf "$p" "$rep"; done
  for p in $PEERS; do peer_down "$p" || run_conn_rate "$p" "$rep" 1; done
  for p in $PEERS; do peer_down "$p" || run_conn_rate "$p" "$rep" "$CONC"; done
done
for p in $PEERS; do stop_peer "$p"; done
for p in $PEERS; do [[ $p == raw ]] || run_idle "$p"; done

write_meta >"$TMP/meta.json"
python3 "$ROOT/bench/report.py" "$TMP/meta.json" "$RESULTS" "$OUT/tunnel.md" "$OUT/tunnel.json"
log "wrote $OUT/tunnel.md and $OUT/tunnel.json"
/usr/bin/python3 "$ROOT/bench/plots.py" --results "$OUT" tunnel
