#!/usr/bin/env bash
# Port-forward benchmark (issue 5): through lpk-kubesim's pod port-forward WebSocket, side by
# side in one run:
#   lpk     lpk-proxy run --agent-pod: ONE port-forward WebSocket to lpk-agent carries every
#           connection as a tunnel stream;
#   python  one port-forward WebSocket per connection, the official Python client's way
#           (kubernetes.stream.portforward, /usr/bin/python3, python3-kubernetes);
#   cpp     one port-forward WebSocket per connection with lpk's own kube::PortForward (the same
#           WebSocket code lpk uses, without the tunnel: isolates what the tunnel buys).
# The pod runs lpk-agent and the bench server as two containers of one pod, so every peer ends
# at the same server through the same pod network namespace.
# Measures: bulk download throughput of one connection (default 256 MiB) and time from connect
# to first byte (p50/p99 over --count connections, opened one after another).
# Writes bench/results/portforward.md and portforward.json, prints the table and draws the
# charts (docs/bench/portforward-*.svg, bench/plots.py).
#
#   bench/portforward/run.sh             full run
#   bench/portforward/run.sh --quick     smoke run (small sizes; results in a temp dir)
#   bench/portforward/run.sh --help
#
# Needs root (kubesim pods are network namespaces). Traffic stays on 127.0.0.1 and kubesim's
# namespaces. Every child is killed on exit; the temp dir is removed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# kubesim names its network namespaces kubesim-node, kubesim-pN: a second kubesim on the machine
# (another test) would remove ours. Run in a private network and mount namespace with our own
# /run/netns, so that nothing outside sees or touches them (and traffic stays inside).
# LPK_PF_ISOLATED carries the caller's mount namespace, so that the child can tell it is in a
# new one: run by hand in the caller's own, the mounts below would make its / private and hide
# its /run/netns.
if [[ -z ${LPK_PF_ISOLATED:-} && $(id -u) == 0 ]]; then
  exec env LPK_PF_ISOLATED="$(readlink /proc/self/ns/mnt)" unshare --mount --net --fork "$0" "$@"
fi
if [[ -n ${LPK_PF_ISOLATED:-} ]]; then
  if [[ $LPK_PF_ISOLATED != mnt:* || $(readlink /proc/self/ns/mnt) == "$LPK_PF_ISOLATED" ]]; then
    echo "portforward/run.sh: LPK_PF_ISOLATED is set by the script itself; unset it" >&2
    exit 2
  fi
  mount --make-rprivate /
  mkdir -p /run/netns
  mount -t tmpfs lpk-pf-netns /run/netns
  ip link set lo up
fi
COMMAND=bench/portforward/run.sh
[[ -n ${LPK_KUBESIM:-} ]] && COMMAND="LPK_KUBESIM=$LPK_KUBESIM $COMMAND"
for arg in "$@"; do COMMAND+=" $arg"; done
BUILD=${LPK_BUILD_DIR:-$ROOT/build-pf}
MIB=256 COUNT=200 REPS=3 OUT=$ROOT/bench/results BUILD_IT=1 QUICK=0

usage() {
  cat <<EOF
usage: bench/portforward/run.sh [--quick] [--mib N] [--count N] [--reps N] [--build-dir DIR]
                                [--no-build] [--out DIR]
  --quick          16 MiB, 20 connections, 1 repetition; results in a temp dir
  --mib N          MiB downloaded by the throughput test (default $MIB)
  --count N        connections timed by the first-byte test (default $COUNT)
  --reps N         repetitions; the median is reported (default $REPS)
  --build-dir DIR  CMake build directory (default \$LPK_BUILD_DIR or build-pf)
  --no-build       use the binaries already built
  --out DIR        where portforward.md and portforward.json go (default bench/results)
Environment: LPK_KUBESIM=PATH uses that lpk-kubesim instead of the build directory's.
EOF
}

source "$ROOT/bench/lib/flags.sh"
declare -A INT_FLAGS=([--mib]=MIB [--count]=COUNT [--reps]=REPS)
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1; MIB=16; COUNT=20; REPS=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) bench_common_flag run.sh "$@"; shift "$BENCH_SHIFT" ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (kubesim pods are network namespaces)" >&2; exit 2; }
command -v kubectl >/dev/null || { echo "run.sh: kubectl is missing; run tools/install-deps.sh" >&2; exit 2; }
/usr/bin/python3 -c "import kubernetes" 2>/dev/null ||
  { echo "run.sh: python3-kubernetes is missing; run tools/install-deps.sh" >&2; exit 2; }
/usr/bin/python3 "$ROOT/bench/plots.py" --check || exit 2  # the charts are drawn at the end

if [[ $BUILD_IT == 1 ]]; then
  [[ -f $BUILD/build.ninja ]] ||
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j2 --target lpk-agent lpk-proxy lpk-kubesim lpk_bench_pf >/dev/null
fi
AGENT=$BUILD/agent/lpk-agent PROXY=$BUILD/proxy/lpk-proxy
KUBESIM=${LPK_KUBESIM:-$BUILD/tools/kubesim/lpk-kubesim} DRIVER=$BUILD/bench/portforward/lpk_bench_pf
for b in "$AGENT" "$PROXY" "$KUBESIM" "$DRIVER"; do
  [[ -x $b ]] || { echo "run.sh: $b is not built; run without --no-build" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lpk-pf-bench.XXXXXX")
[[ $QUICK == 1 && $OUT == "$ROOT/bench/results" ]] && OUT=$TMP/results
mkdir -p "$OUT" "$TMP/lpk"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
export TMPDIR=$TMP/lpk XDG_STATE_HOME=$TMP/lpk XDG_RUNTIME_DIR=$TMP/lpk

# kubesim with our binaries as images; wait for its "serving" line.
cat >"$TMP/images.yaml" <<EOF
lpk/lpk-agent: ["$AGENT"]
lpk/pf-bench-server: ["$DRIVER", "serve", "--port", "7000"]
EOF
mkfifo "$TMP/kubesim.out"
"$KUBESIM" up --state "$TMP/state" --images "$TMP/images.yaml" >"$TMP/kubesim.out" 2>&1 &
PIDS+=($!)
exec 3<"$TMP/kubesim.out"
read -r -t 120 line <&3 || { echo "run.sh: kubesim did not start" >&2; exit 1; }
[[ $line =~ kubeconfig\ ([^ ]+) ]] || { echo "run.sh: kubesim said: $line" >&2; exit 1; }
KC=${BASH_REMATCH[1]}
cat <&3 >"$TMP/kubesim.log" &
PIDS+=($!)
k() { kubectl --kubeconfig "$KC" "$@"; }
k apply -f - >/dev/null <<EOF
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench"},
 "spec": {"containers": [
   {"name": "agent", "image": "lpk/lpk-agent:dev", "args": ["--listen", "127.0.0.1:4590", "--log-level", "warn"]},
   {"name": "server", "image": "lpk/pf-bench-server",
    "readinessProbe": {"tcpSocket": {"port": 7000}, "periodSeconds": 1}}]}}
EOF
k wait --for=condition=Ready pod/bench --timeout=120s >/dev/null

# lpk-proxy through the port-forward; wait for its listen and ready lines (read with the
# patterns lpk-proxy declares: lpk-proxy __console-lines).
console_pattern() {
  "$PROXY" __console-lines |
    python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]]["pattern"])' "$1"
}
listen_re=$(console_pattern listen)
ready_re=$(console_pattern ready)
mkfifo "$TMP/proxy.out"
"$PROXY" run --agent-pod default/bench:4590 --kubeconfig "$KC" --map 127.0.0.1:0=127.0.0.1:7000 \
  --log-level warn >"$TMP/proxy.out" 2>"$TMP/proxy.err" &
PIDS+=($!)
exec 4<"$TMP/proxy.out"
read -r -t 30 line <&4 || { echo "run.sh: lpk-proxy printed nothing: $(cat "$TMP/proxy.err")" >&2; exit 1; }
[[ $line =~ $listen_re ]] || { echo "run.sh: lpk-proxy said: $line" >&2; exit 1; }
LISTEN=${BASH_REMATCH[1]}
read -r -t 60 line <&4 && [[ $line =~ $ready_re ]] ||
  { echo "run.sh: lpk-proxy not ready: $(cat "$TMP/proxy.err")" >&2; exit 1; }

BYTES=$((MIB << 20))
SAMPLES=$TMP/samples.jsonl
: >"$SAMPLES"
measure() {  # peer metric command...
  local peer=$1 metric=$2; shift 2
  local out
  out=$("$@") || { echo "run.sh: $peer $metric failed" >&2; exit 1; }
  echo "{\"peer\":\"$peer\",\"metric\":\"$metric\",\"result\":$out}" >>"$SAMPLES"
  echo "  $peer $metric $out" >&2
}
POD=default/bench:7000
for rep in $(seq "$REPS"); do
  echo "repetition $rep/$REPS" >&2
  measure lpk fetch "$DRIVER" fetch --local "$LISTEN" --bytes "$BYTES"
  measure cpp fetch "$DRIVER" fetch --pod "$POD" --kubeconfig "$KC" --bytes "$BYTES"
  measure python fetch /usr/bin/python3 "$ROOT/bench/portforward/python_peer.py" fetch "$KC" "$POD" "$BYTES"
  measure lpk ttfb "$DRIVER" ttfb --local "$LISTEN" --count "$COUNT"
  measure cpp ttfb "$DRIVER" ttfb --pod "$POD" --kubeconfig "$KC" --count "$COUNT"
  measure python ttfb /usr/bin/python3 "$ROOT/bench/portforward/python_peer.py" ttfb "$KC" "$POD" "$COUNT"
done

/usr/bin/python3 "$ROOT/bench/portforward/report.py" "$SAMPLES" "$OUT" \
  --command "$COMMAND" --mib "$MIB" --count "$COUNT" --reps "$REPS" \
  --commit "$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet -- kube proxy agent || echo +local)"
cat "$OUT/portforward.md"
/usr/bin/python3 "$ROOT/bench/plots.py" --results "$OUT" portforward
