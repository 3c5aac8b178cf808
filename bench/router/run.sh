#!/usr/bin/env bash
# Request router benchmark (issue 14, floor: requests without the routing header keep >= 0.8x
# the request rate of going straight to the original server). One nginx on 127.0.0.1 (one
# worker, keep-alive) is the original; wrk -t1 -cCONC (keep-alive) asks it for a small page
# three ways, peers alternating in every round:
#   direct   nginx itself
#   router   lpk-agent router --routes-file (nginx the one original, a route for another
#            header value), no routing header on the requests
#   haproxy  HAProxy in `mode http` (one thread, as the router runs one), the proxy a user
#            would otherwise put there
# Prints requests/s (median of the rounds), each proxy's ratio to direct and the p50 latency it
# adds, writes OUT/router.json and router.md and draws the chart (docs/bench/router-rate.svg for
# bench/results, bench/plots.py). An HTTP/2 row follows: h2load -c1 -m10 -nH2N (prior knowledge,
# one connection, 10 streams at a time) to nginx's h2c port directly and through a second router
# whose original it is (each stream routed on its own), peers alternating in every round.
#
#   bench/router/run.sh [--secs 5] [--rounds 3] [--concurrency 16] [--h2-requests 20000]
#                       [--build-dir DIR] [--no-build] [--out DIR] [--nice N]
# Everything stays on 127.0.0.1; every child is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COMMAND="bench/router/run.sh $*"
BUILD=${LPK_BUILD_DIR:-$ROOT/build-bench}
SECS=5 ROUNDS=3 CONC=16 H2N=20000 OUT=$ROOT/bench/results BUILD_IT=1
NICE=0; [[ $(id -u) == 0 ]] && NICE=-10

source "$ROOT/bench/lib/flags.sh"
declare -A INT_FLAGS=([--secs]=SECS [--rounds]=ROUNDS [--concurrency]=CONC [--h2-requests]=H2N)
while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) bench_common_flag router/run.sh "$@"; shift "$BENCH_SHIFT" ;;
  esac
done
for tool in nginx wrk haproxy h2load; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] ||
    { echo "router/run.sh: $tool is missing; run tools/install-deps.sh" >&2; exit 1; }
done
PATH=$PATH:/usr/sbin
/usr/bin/python3 "$ROOT/bench/plots.py" --check || exit 2  # the chart is drawn at the end

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lpk-bench-router.XXXXXX")
PIDS=()
source "$ROOT/bench/lib/procs.sh"
stop_all_on_exit router/run.sh

if [[ $BUILD_IT == 1 ]]; then
  log "building lpk-agent in $BUILD (Release)"
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$TMP/build.log" 2>&1
  cmake --build "$BUILD" -j2 --target lpk-agent >>"$TMP/build.log" 2>&1 ||
    { tail -20 "$TMP/build.log" >&2; exit 1; }
fi
AGENT=$BUILD/agent/lpk-agent
[[ -x $AGENT ]] || { echo "router/run.sh: $AGENT is not built (drop --no-build)" >&2; exit 1; }

# The original: a page of about the size of a JSON API answer.
mkdir -p "$TMP/www" "$TMP/nginx"
head -c 600 /dev/zero | tr '\0' 'x' >"$TMP/www/index.html"
NGINX_PORT=$(free_port)
H2_PORT=$(free_port)
cat >"$TMP/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  server { listen 127.0.0.1:$NGINX_PORT; root $TMP/www; }
  server { listen 127.0.0.1:$H2_PORT http2; root $TMP/www; }
}
EOF
spawn nginx nginx -p "$TMP/nginx" -c "$TMP/nginx.conf" -e "$TMP/nginx/error.log"
wait_port "$NGINX_PORT" 10
wait_port "$H2_PORT" 10

# start_router NAME PORT: a router whose one original is 127.0.0.1:PORT (and a route for another
# header value to the same place); sets STARTED_PORT to the port it listens on.
start_router() {
  cat >"$TMP/routes-$1.json" <<EOF
{"routes": [{"header": "x-lpk-route", "value": "someone-else", "session": "bench",
             "target": "127.0.0.1:$2"}],
 "originals": ["127.0.0.1:$2"]}
EOF
  spawn "$1" "$AGENT" router --service bench --port 0 --admin-port 0 \
    --routes-file "$TMP/routes-$1.json" --log-level warn
  STARTED_PORT=$(wait_line "$1" '^router ' 10 | sed -E 's/.*:([0-9]+)$/\1/')
  wait_line "$1" '^router-admin ' 10 >/dev/null
}
start_router router "$NGINX_PORT"
ROUTER_PORT=$STARTED_PORT
start_router router_h2 "$H2_PORT"
ROUTER_H2_PORT=$STARTED_PORT

HAPROXY_PORT=$(free_port)
cat >"$TMP/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend nginx
backend nginx
  server nginx 127.0.0.1:$NGINX_PORT
EOF
spawn haproxy haproxy -db -f "$TMP/haproxy.cfg"
wait_port "$HAPROXY_PORT" 10
declare -A TO=([direct]=$NGINX_PORT [router]=$ROUTER_PORT [haproxy]=$HAPROXY_PORT)
for peer in direct router haproxy; do  # each answers before it is measured
  curl -sf --noproxy '*' -o /dev/null "http://127.0.0.1:${TO[$peer]}/index.html" ||
    { echo "router/run.sh: $peer does not answer" >&2; exit 1; }
done

log "wrk -t1 -c$CONC -d${SECS}s, $ROUNDS round(s); load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$TMP/samples.jsonl"
for round in $(seq "$ROUNDS"); do
  for peer in direct router haproxy; do
    run_fg $((SECS + 30)) wrk -t1 -c"$CONC" -d"${SECS}s" --latency \
      "http://127.0.0.1:${TO[$peer]}/index.html" >"$TMP/wrk.out"
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.out")
    p50=$(awk '$1 == "50%" {print $2}' "$TMP/wrk.out")
    errors=$(grep -E "Non-2xx|Socket errors" "$TMP/wrk.out" | tr -s ' ' | tr '\n' ' ' || true)
    log "$peer #$round: $rps requests/s, p50 $p50 ${errors}"
    echo "{\"peer\": \"$peer\", \"round\": $round, \"rps\": $rps, \"p50\": \"$p50\", \"errors\": \"$errors\"}" \
      >>"$TMP/samples.jsonl"
  done
done

log "h2load -c1 -m10 -n$H2N (h2c), $ROUNDS round(s)"
declare -A TO_H2=([h2_direct]=$H2_PORT [h2_router]=$ROUTER_H2_PORT)
for round in $(seq "$ROUNDS"); do
  for peer in h2_direct h2_router; do
    run_fg 120 h2load -c1 -m10 -n"$H2N" "http://127.0.0.1:${TO_H2[$peer]}/index.html" >"$TMP/h2load.out"
    rps=$(awk '/^finished in/ {print $4}' "$TMP/h2load.out")
    failed=$(awk '/^requests:/ {print $10}' "$TMP/h2load.out")
    log "$peer #$round: $rps requests/s, $failed failed"
    echo "{\"peer\": \"$peer\", \"round\": $round, \"rps\": $rps, \"failed\": $failed}" \
      >>"$TMP/samples.jsonl"
  done
done

mkdir -p "$OUT"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
python3 - "$TMP/samples.jsonl" "$OUT/router.json" "$CONC" "$SECS" "$COMMAND" "$COMMIT" <<'PY'
import datetime, json, os, re, statistics, sys

def micros(text):  # wrk's "123.45us", "1.20ms", "1.00s"
    value, unit = re.match(r"([\d.]+)(us|ms|s)$", text).groups()
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]

samples = [json.loads(l) for l in open(sys.argv[1])]
peers = {}
for peer in ("direct", "router", "haproxy"):
    runs = [s for s in samples if s["peer"] == peer]
    peers[peer] = {"rps": statistics.median(r["rps"] for r in runs),
                   "p50_us": statistics.median(micros(r["p50"]) for r in runs),
                   "runs": runs}
out = {"date": datetime.datetime.utcnow().isoformat() + "Z", "nproc": os.cpu_count(),
       "load": open("/proc/loadavg").read().split()[:3], "concurrency": int(sys.argv[3]),
       "seconds": int(sys.argv[4]), "peers": peers, "floor_ratio": 0.8,
       "command": sys.argv[5], "commit": sys.argv[6]}
for peer in ("h2_direct", "h2_router"):
    runs = [s for s in samples if s["peer"] == peer]
    peers[peer] = {"rps": statistics.median(r["rps"] for r in runs), "runs": runs}
out["h2_router_over_direct"] = peers["h2_router"]["rps"] / peers["h2_direct"]["rps"]
for peer in ("router", "haproxy"):
    out[f"{peer}_over_direct"] = peers[peer]["rps"] / peers["direct"]["rps"]
    out[f"{peer}_p50_added_us"] = peers[peer]["p50_us"] - peers["direct"]["p50_us"]
json.dump(out, open(sys.argv[2], "w"), indent=1)
lines = [f"# HTTP/1.1 through lpk-agent router: wrk -t1 -c{out['concurrency']} keep-alive, "
         "no routing header", "",
         f"`{sys.argv[5]}` on {out['date']}, nproc {out['nproc']}, load {' '.join(out['load'])}.",
         "", "| peer | requests/s (median) | ratio to direct | p50 (us) | p50 added (us) |",
         "|---|---|---|---|---|"]
for peer in ("direct", "router", "haproxy"):
    p = peers[peer]
    ratio = p["rps"] / peers["direct"]["rps"]
    lines.append(f"| {peer} | {p['rps']:.0f} | {ratio:.2f} | {p['p50_us']:.0f} | "
                 f"{p['p50_us'] - peers['direct']['p50_us']:.0f} |")
met = "met" if out["router_over_direct"] >= 0.8 else "NOT met"
lines += ["", f"router / direct: {out['router_over_direct']:.2f}, haproxy / direct: "
          f"{out['haproxy_over_direct']:.2f}, router / haproxy: "
          f"{peers['router']['rps'] / peers['haproxy']['rps']:.2f}. "
          f"Floor of issue 14 (router >= 0.8x direct): {met}.", "",
          "HTTP/2 (h2c), h2load -c1 -m10: one connection, 10 streams at a time, each routed:", "",
          "| peer | requests/s (median) | ratio to direct | failed |", "|---|---|---|---|"]
for peer in ("h2_direct", "h2_router"):
    p = peers[peer]
    lines.append(f"| {peer} | {p['rps']:.0f} | {p['rps'] / peers['h2_direct']['rps']:.2f} | "
                 f"{sum(r['failed'] for r in p['runs'])} |")
open(os.path.splitext(sys.argv[2])[0] + ".md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
log "wrote $OUT/router.json and router.md"
/usr/bin/python3 "$ROOT/bench/plots.py" --results "$OUT" router
