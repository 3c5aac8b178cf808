#!/usr/bin/env bash
# UDP benchmark (issue 12, floor: >= 50k datagrams/s of 512 bytes through lpk on loopback, and
# its ratio to socat in the same run). One UDP echo (lpk_bench_udp echo) on 127.0.0.1, reached
# three ways, peers interleaved in every repetition:
#   raw    the echo itself
#   socat  socat UDP4-LISTEN:P,bind=127.0.0.1,fork UDP4:127.0.0.1:ECHO (one relay process per
#          client, as each run is a new client)
#   lpk    lpk-proxy run --map 127.0.0.1:0=127.0.0.1:ECHO/udp -> tunnel over TCP -> lpk-agent
#          --listen 127.0.0.1:0 (a plain process, as bench/run.sh runs it), which sends from a
#          connected UDP socket per flow
# The client (lpk_bench_udp run) keeps --window datagrams in flight for --secs seconds and
# counts what comes back: datagrams/s (round trips) and loss.
#
#   bench/udp/run.sh [--secs 5] [--reps 3] [--size 512] [--window 64] [--build-dir DIR]
#                    [--no-build] [--out DIR] [--nice N]
# Writes OUT/udp.json and udp.md (default bench/results) and prints the table. Everything stays on
# 127.0.0.1; every child is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COMMAND="bench/udp/run.sh $*"
BUILD=${LPK_BUILD_DIR:-$ROOT/build-bench}
SECS=5 REPS=3 SIZE=512 WINDOW=64 OUT=$ROOT/bench/results BUILD_IT=1
NICE=0; [[ $(id -u) == 0 ]] && NICE=-10

source "$ROOT/bench/lib/flags.sh"
declare -A INT_FLAGS=([--secs]=SECS [--reps]=REPS [--size]=SIZE [--window]=WINDOW)
while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) bench_common_flag udp/run.sh "$@"; shift "$BENCH_SHIFT" ;;
  esac
done
command -v socat >/dev/null || { echo "udp/run.sh: socat is missing; run tools/install-deps.sh" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lpk-bench-udp.XXXXXX")
PIDS=()
source "$ROOT/bench/lib/procs.sh"
stop_all_on_exit udp/run.sh

if [[ $BUILD_IT == 1 ]]; then
  log "building lpk_bench_udp, lpk-agent and lpk-proxy in $BUILD (Release)"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$TMP/build.log" 2>&1
  cmake --build "$BUILD" -j2 --target lpk_bench_udp lpk-agent lpk-proxy >>"$TMP/build.log" 2>&1 ||
    { tail -20 "$TMP/build.log" >&2; exit 1; }
fi
DRIVER=$BUILD/bench/udp/lpk_bench_udp
for bin in "$DRIVER" "$BUILD/agent/lpk-agent" "$BUILD/proxy/lpk-proxy"; do
  [[ -x $bin ]] || { echo "udp/run.sh: $bin is not built (drop --no-build)" >&2; exit 1; }
done

# wait_for NAME REGEX: the first match of REGEX (group 1) in NAME's stdout, within 10 s.
wait_for() {
  local i
  for i in $(seq 200); do
    if [[ $(cat "$TMP/$1.out") =~ $2 ]]; then echo "${BASH_REMATCH[1]}"; return 0; fi
    sleep 0.05
  done
  echo "udp/run.sh: $1 did not start: $(cat "$TMP/$1.err")" >&2
  exit 1
}

spawn echo "$DRIVER" echo
ECHO_PORT=$(wait_for echo 'echo ([0-9]+)')
SOCAT_PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
spawn socat socat "UDP4-LISTEN:$SOCAT_PORT,bind=127.0.0.1,reuseaddr,fork" "UDP4:127.0.0.1:$ECHO_PORT"
spawn agent "$BUILD/agent/lpk-agent" --listen 127.0.0.1:0 --log-level warn
TUNNEL=$(wait_for agent 'tunnel ([0-9.:]+)')
spawn proxy "$BUILD/proxy/lpk-proxy" run --agent "$TUNNEL" --map "127.0.0.1:0=127.0.0.1:$ECHO_PORT/udp" --log-level warn
LPK_PORT=$(wait_for proxy 'listen 127\.0\.0\.1:([0-9]+)/udp')
declare -A TO=([raw]=$ECHO_PORT [socat]=$SOCAT_PORT [lpk]=$LPK_PORT)

log "size $SIZE, window $WINDOW, ${SECS}s per run, $REPS repetition(s); load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$TMP/samples.jsonl"
for rep in $(seq "$REPS"); do
  for peer in raw socat lpk; do
    line=$(run_fg $((SECS + 30)) "$DRIVER" run --to "127.0.0.1:${TO[$peer]}" --size "$SIZE" \
      --seconds "$SECS" --window "$WINDOW")
    log "$peer #$rep: $line"
    echo "{\"peer\": \"$peer\", \"rep\": $rep, \"result\": $line}" >>"$TMP/samples.jsonl"
  done
done

mkdir -p "$OUT"
python3 - "$TMP/samples.jsonl" "$OUT/udp.json" "$SIZE" "$WINDOW" "$COMMAND" <<'PY'
import json, statistics, sys, datetime, os
samples = [json.loads(l) for l in open(sys.argv[1])]
command = sys.argv[5]
med = {}
for peer in ("raw", "socat", "lpk"):
    runs = [s["result"] for s in samples if s["peer"] == peer]
    med[peer] = {"per_second": statistics.median(r["per_second"] for r in runs),
                 "loss": statistics.median(r["loss"] for r in runs),
                 "runs": runs}
ratio = med["lpk"]["per_second"] / med["socat"]["per_second"] if med["socat"]["per_second"] else None
out = {"date": datetime.datetime.utcnow().isoformat() + "Z", "nproc": os.cpu_count(),
       "load": open("/proc/loadavg").read().split()[:3], "size": int(sys.argv[3]),
       "window": int(sys.argv[4]), "peers": med, "lpk_over_socat": ratio,
       "floor_datagrams_per_second": 50000}
json.dump(out, open(sys.argv[2], "w"), indent=1)
lines = [f"# UDP through lpk: {out['size']}-byte round trips, window {out['window']}", "",
         f"`{command}` on {out['date']}, nproc {out['nproc']}, load {' '.join(out['load'])}.", "",
         "| peer | datagrams/s (median) | loss (median) |", "|---|---|---|"]
for peer in ("raw", "socat", "lpk"):
    lines.append(f"| {peer} | {med[peer]['per_second']:.0f} | {med[peer]['loss']:.4%} |")
met = "met" if med["lpk"]["per_second"] >= 50000 else "NOT met"
lines += ["", f"lpk / socat: {ratio:.2f}. Floor of issue 12 (>= 50,000 datagrams/s): {met}."]
open(os.path.splitext(sys.argv[2])[0] + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
log "wrote $OUT/udp.json and udp.md"
