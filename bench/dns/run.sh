#!/usr/bin/env bash
# Stub DNS benchmark (issue 3): dnsperf -c 4 against lpk-dns and against dnsmasq, side by side
# in one run, each server pinned to one core (taskset), dnsperf on the other core.
#  1. cluster names: the same 1,000 names, from lpk's name table and from dnsmasq's hosts file;
#  2. forwarded, cached names: 1,000 outside names both servers forward to one upstream dnsmasq
#     (warmed first, so every measured query is a cache hit);
#  3. p99 latency at half of each server's maximum rate (cluster names).
# Writes bench/results/dns.md and bench/results/dns.json, and the charts docs/bench/dns-*.svg
# (bench/plots.py; results written elsewhere with --out get their charts beside them).
#
#   bench/dns/run.sh [--seconds N] [--reps N] [--lpk-dns PATH] [--out DIR] [--rt]
# --rt (root): servers and dnsperf run SCHED_FIFO (chrt -f 10) instead of nice -10, so that
# compilers on a shared machine do not preempt them; both servers get the same treatment.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=8 reps=3 out=bench/results rt=0
lpk_dns=${LPK_BUILD_DIR:-build-dns}/dns/lpk-dns
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --lpk-dns) lpk_dns=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --rt) rt=1; shift ;;
    *) echo "bench/dns/run.sh: unknown option $1 (--seconds N --reps N --lpk-dns PATH --out DIR)" >&2; exit 2 ;;
  esac
done
for tool in dnsperf dnsmasq taskset kdig python3; do
  command -v $tool >/dev/null || { echo "bench/dns: $tool missing: run tools/install-deps.sh" >&2; exit 1; }
done
# The charts are drawn after measuring: find out now that they cannot be.
/usr/bin/python3 bench/plots.py --check
[[ -x $lpk_dns ]] || { echo "bench/dns: $lpk_dns not built: cmake --build build-dns --target lpk-dns" >&2; exit 1; }
if (($(nproc) >= 2)); then server_core=1 client_core=0; else server_core=0 client_core=0; fi

work=$(mktemp -d /tmp/lpk-dns-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# As root, measured processes get nice -10 so that builds elsewhere on the shared machine
# disturb both servers (and the client) less; both sides are treated the same.
prio=(); ((EUID == 0)) && prio=(nice -n -10)
if ((rt)); then
  ((EUID == 0)) || { echo "bench/dns: --rt needs root (chrt -f)" >&2; exit 2; }
  prio=(chrt -f 10)
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_answer() {  # ADDR PORT NAME: until the server answers (bounded)
  for _ in $(seq 1 200); do
    kdig @"$1" -p "$2" +short +timeout=1 +retry=0 "$3" 2>/dev/null | grep -q . && return 0
  done
  echo "bench/dns: no answer from $1:$2" >&2; exit 1
}

python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
services, hosts, cq, up, fq = [], [], [], [], []
for i in range(1000):
    addr = f"127.77.{i // 250}.{i % 250 + 1}"
    services.append({"name": f"svc{i}", "namespace": "bench", "address": addr,
                     "ports": [{"name": "http", "port": 80}]})
    hosts.append(f"{addr} svc{i}.bench.svc.cluster.local")
    cq.append(f"svc{i}.bench.svc.cluster.local A")
    up.append(f"127.88.{i // 250}.{i % 250 + 1} host{i}.example.test")
    fq.append(f"host{i}.example.test A")
json.dump({"zone": "cluster.local", "namespace": "bench", "services": services},
          open(f"{w}/table.json", "w"))
for name, lines in [("hosts", hosts), ("cluster.txt", cq), ("upstream-hosts", up),
                    ("forward.txt", fq)]:
    open(f"{w}/{name}", "w").write("\n".join(lines) + "\n")
PY

# Upstream for forwarded names: answers from its hosts file only, long TTL so caches hold.
up_port=$(free_port)
dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --addn-hosts="$work/upstream-hosts" \
  --listen-address=127.0.0.2 --bind-interfaces --port="$up_port" --local-ttl=3600 --pid-file= &
pids+=($!)
echo "nameserver 127.0.0.2#$up_port" > "$work/upstream.conf"
wait_answer 127.0.0.2 "$up_port" host1.example.test

# Peer: dnsmasq with the 1,000 cluster names in a hosts file, forwarding the rest upstream.
peer_port=$(free_port)
"${prio[@]}" taskset -c $server_core dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --addn-hosts="$work/hosts" --server="127.0.0.2#$up_port" --listen-address=127.0.0.3 --bind-interfaces \
  --port="$peer_port" --cache-size=10000 --local-ttl=5 --pid-file= &
pids+=($!)
peer_pid=$!
wait_answer 127.0.0.3 "$peer_port" svc1.bench.svc.cluster.local

"${prio[@]}" taskset -c $server_core "$lpk_dns" --table "$work/table.json" --listen 127.0.0.1:0 \
  --resolv-conf "$work/upstream.conf" > "$work/stub.out" 2> "$work/stub.err" &
pids+=($!)
stub_pid=$!
for _ in $(seq 1 200); do grep -q '^listen ' "$work/stub.out" && break; read -r -t 0.05 <> <(:) || true; done
stub_port=$(sed -n 's/^listen 127.0.0.1://p' "$work/stub.out")
wait_answer 127.0.0.1 "$stub_port" svc1.bench.svc.cluster.local

declare -A addr=([lpk]=127.0.0.1 [dnsmasq]=127.0.0.3) port=([lpk]=$stub_port [dnsmasq]=$peer_port)
declare -A pid=([lpk]=$stub_pid [dnsmasq]=$peer_pid)
# CPU time a server used, in clock ticks (utime + stime). dnsperf saturates its own core near
# 110k qps here, so with 2 cores the client can be the limit; queries per server CPU-second is
# then the server's one-core capacity, measured in the same runs.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
samples="$work/samples.jsonl"
perf() {  # SERVER FILE EXTRA...: one dnsperf run on the client core; prints its summary
  "${prio[@]}" taskset -c $client_core dnsperf -s "${addr[$1]}" -p "${port[$1]}" -d "$work/$2" -c 4 "${@:3}" 2>&1
}
record() {  # METRIC SERVER VALUE
  echo "{\"metric\": \"$1\", \"server\": \"$2\", \"value\": $3}" >> "$samples"
}

# Warm both caches with every forwarded name (each server asks the upstream once per name).
for s in lpk dnsmasq; do perf $s forward.txt -n 2 -l 30 > "$work/warm-$s.txt"; done

for ((r = 1; r <= reps; r++)); do
  for set in cluster forward; do
    for s in lpk dnsmasq; do
      t0=$(cpu_ticks "${pid[$s]}")
      res=$(perf $s $set.txt -l "$seconds")
      t1=$(cpu_ticks "${pid[$s]}")
      qps=$(awk '/Queries per second/ {print $4}' <<<"$res")
      lost=$(awk '/Queries lost/ {print $3}' <<<"$res")
      done_=$(awk '/Queries completed/ {print $3}' <<<"$res")
      per_cpu=$(python3 -c "print(round($done_ / max(1, $t1 - $t0) * $hz))")
      echo "round $r  $set  $s  qps=$qps lost=$lost server_cpu=$(((t1 - t0) * 100 / hz))cs queries/cpu-s=$per_cpu"
      record "${set}_qps" $s "$qps"
      record "${set}_lost" $s "$lost"
      record "${set}_per_cpu" $s "$per_cpu"
    done
  done
done

# Latency: cluster names at half of each server's median maximum rate, every query timed.
for s in lpk dnsmasq; do
  max=$(python3 -c "
import json,statistics,sys
v=[json.loads(l)['value'] for l in open('$samples') if json.loads(l)['metric']=='cluster_qps' and json.loads(l)['server']=='$s']
print(int(statistics.median(v)))")
  half=$((max / 2))
  perf $s cluster.txt -l "$seconds" -Q "$half" -v > "$work/lat-$s.txt" || true
  p=$(python3 -c "
import statistics
lat=sorted(float(l.split()[-1]) for l in open('$work/lat-$s.txt') if l.startswith('> '))
q=lambda f: lat[min(len(lat)-1, int(f*len(lat)))]*1000 if lat else None
print(len(lat), q(0.5), q(0.99))")
  read -r n p50 p99 <<<"$p"
  echo "latency $s at $half qps: n=$n p50=${p50}ms p99=${p99}ms"
  record half_rate $s "$half"
  record lat_p50_ms $s "$p50"
  record lat_p99_ms $s "$p99"
done

mkdir -p "$out"
python3 bench/dns/report.py "$samples" "$out/dns.md" "$out/dns.json" "$seconds" "$reps" \
  "$(dnsperf -h 2>&1 | sed -n 's/^Version //p')" "$(dnsmasq --version | head -1 | sed 's/  Copyright.*//')" \
  "${prio[*]:-none}"
cat "$out/dns.md"
/usr/bin/python3 bench/plots.py --results "$out" dns
