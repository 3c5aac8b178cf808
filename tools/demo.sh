#!/usr/bin/env bash
# Local demo of lpk's tunnel, all on this machine's loopback:
#
#   curl ──► lpk-proxy (web 127.77.x.y:8080) ══ one tunnel ══► lpk-agent ──► nginx
#   redis-cli ──► lpk-proxy (redis 127.77.x.y:6379) ═════════►           └──► redis-server
#
# Starts real nginx and redis-server on free loopback ports with throw-away configs, then
# lpk-agent and lpk-proxy with a static service map, sends real requests through, and stops
# everything it started. Exit 0 only if every request really went through the tunnel.
#
#   tools/demo.sh [BUILD_DIR]     (default: build/, or $LPK_BUILD_DIR)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${LPK_BUILD_DIR:-$root/build}}
agent_bin=$build/agent/lpk-agent
proxy_bin=$build/proxy/lpk-proxy

bold='' green='' red='' off=''
if [[ -t 1 ]]; then bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' off=$'\e[0m'; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
explain() { printf '    %s\n' "$@"; }
fail() { printf '%sdemo: %s%s\n' "$red" "$*" "$off" >&2; exit 1; }

for bin in "$agent_bin" "$proxy_bin"; do
  [[ -x $bin ]] ||
    fail "$bin is missing: build it with 'cmake --build $build --target lpk-agent lpk-proxy'"
done
for tool in nginx redis-server redis-cli curl python3 kdig; do
  command -v "$tool" >/dev/null || fail "$tool is not installed: run tools/install-deps.sh"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/lpk-demo.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((rc != 0)); then
    for log in "$work"/*.log; do
      [[ -s $log ]] && { echo "--- $(basename "$log") (last lines)"; tail -n 15 "$log"; }
    done >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_line FILE REGEX SECONDS: prints the first line of FILE matching REGEX, waiting for it.
wait_line() {
  local deadline=$((SECONDS + $3)) line
  while ((SECONDS <= deadline)); do
    if line=$(grep -m1 -E "$2" "$1" 2>/dev/null); then printf '%s\n' "$line"; return 0; fi
    sleep 0.05
  done
  fail "no line matching '$2' in $(basename "$1") after $3 s"
}

# The stdout lines the binaries print for scripts, read with the patterns they declare
# (lpk-agent --console-lines, lpk-proxy __console-lines): pattern TABLE NAME prints one.
pattern() {
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]]["pattern"])' "$1" "$2"
}
agent_lines=$("$agent_bin" --console-lines) || fail "$agent_bin --console-lines failed"
proxy_lines=$("$proxy_bin" __console-lines) || fail "$proxy_bin __console-lines failed"
tunnel_re=$(pattern "$agent_lines" tunnel)
listen_re=$(pattern "$proxy_lines" listen)
ready_re=$(pattern "$proxy_lines" ready)
dns_re=$(pattern "$proxy_lines" dns)

# wait_port PORT SECONDS: waits until 127.0.0.1:PORT accepts connections.
wait_port() {
  local deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    ((SECONDS <= deadline)) || fail "nothing accepts on 127.0.0.1:$1 after $2 s"
    sleep 0.05
  done
}

step "1/5  Start real servers on loopback (they play the cluster's services)"
nginx_port=$(free_port)
mkdir -p "$work/www"
echo "Hello from nginx on 127.0.0.1:$nginx_port, reached through the lpk tunnel." \
  >"$work/www/index.html"
cat >"$work/nginx.conf" <<EOF
daemon off;
master_process off;
pid $work/nginx.pid;
error_log $work/nginx.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/tmp-body;
  proxy_temp_path $work/tmp-proxy;
  fastcgi_temp_path $work/tmp-fastcgi;
  uwsgi_temp_path $work/tmp-uwsgi;
  scgi_temp_path $work/tmp-scgi;
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
EOF
nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx.log" >>"$work/nginx.log" 2>&1 &
pids+=($!)
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$nginx_port" 10
wait_port "$redis_port" 10
explain "nginx        127.0.0.1:$nginx_port" "redis-server 127.0.0.1:$redis_port"

step "2/5  Start lpk-agent (in a real setup it runs in the cluster, inside the app's pod)"
"$agent_bin" --listen 127.0.0.1:0 >"$work/agent.out" 2>"$work/agent.log" &
pids+=($!)
[[ $(wait_line "$work/agent.out" "$tunnel_re" 10) =~ $tunnel_re ]]
tunnel=${BASH_REMATCH[1]}
explain "The agent waits for the tunnel on $tunnel. It dials each stream's target itself," \
  "so nginx and redis only ever see connections coming from the agent."

step "3/5  Start lpk-proxy with a static service map and its stub DNS"
# The demo asks the stub only for its own names; anything else would go to this dead upstream,
# never to the machine's resolver.
echo "nameserver 127.0.0.1#9" >"$work/resolv.conf"
"$proxy_bin" run --agent "$tunnel" --dns 127.0.0.1:0 --resolv-conf "$work/resolv.conf" \
  --map "web:8080=127.0.0.1:$nginx_port" \
  --map "redis:6379=127.0.0.1:$redis_port" >"$work/proxy.out" 2>"$work/proxy.log" &
pids+=($!)
wait_line "$work/proxy.out" "$ready_re" 15 >/dev/null  # after every listen line
web='' redis=''
while read -r line; do
  [[ $line =~ $listen_re ]] || continue
  case ${BASH_REMATCH[2]} in
    "127.0.0.1:$nginx_port") web=${BASH_REMATCH[1]} ;;
    "127.0.0.1:$redis_port") redis=${BASH_REMATCH[1]} ;;
  esac
done <"$work/proxy.out"
[[ -n $web && -n $redis ]] || fail "lpk-proxy did not listen for both services: $(cat "$work/proxy.out")"
[[ $(wait_line "$work/proxy.out" "$dns_re" 10) =~ $dns_re ]]
dns_host=${BASH_REMATCH[1]} dns_port=${BASH_REMATCH[2]}
dns=$dns_host:$dns_port
explain "Each service name gets its own stable loopback address from the pool 127.77.0.0/16:" \
  "  web   -> $web   (forwards to nginx)" \
  "  redis -> $redis   (forwards to redis-server)" \
  "Every connection to those addresses becomes a stream inside ONE tunnel connection to the agent."
resolved=$(kdig "@$dns_host" -p "$dns_port" +short web.default.svc.cluster.local A)
explain "The stub DNS on $dns answers cluster names, as a pod would resolve them:" \
  "  web.default.svc.cluster.local -> $resolved"
[[ $resolved == "${web%:*}" ]] || fail "the stub DNS answered '$resolved' for web, not ${web%:*}"

step "4/5  HTTP through the tunnel: curl http://web:8080/ (the name resolved by the stub)"
page=$(curl -sS --fail --noproxy '*' --max-time 10 --resolve "web:8080:$resolved" \
  "http://web:8080/") ||
  fail "curl through lpk-proxy failed"
explain "$page"
[[ $page == *"reached through the lpk tunnel"* ]] || fail "unexpected page from $web: $page"

step "5/5  Redis through the tunnel: redis-cli -h ${redis%:*} -p ${redis##*:}"
value="hello from $(hostname) at $(date -u +%H:%M:%S)"
rcli=(redis-cli -h "${redis%:*}" -p "${redis##*:}")
set_reply=$("${rcli[@]}" SET lpk:demo "$value") || fail "redis-cli SET through lpk-proxy failed"
got=$("${rcli[@]}" GET lpk:demo) || fail "redis-cli GET through lpk-proxy failed"
explain "SET lpk:demo \"$value\" -> $set_reply" "GET lpk:demo -> \"$got\""
[[ $set_reply == OK && $got == "$value" ]] || fail "redis value did not round-trip: '$got'"
# Proof that it went through the tunnel: read it back directly from redis-server too.
direct=$(redis-cli -h 127.0.0.1 -p "$redis_port" GET lpk:demo)
[[ $direct == "$value" ]] || fail "redis-server itself does not hold the value: '$direct'"
explain "Asked directly, redis-server on 127.0.0.1:$redis_port holds the same value."

printf '\n%sdemo OK:%s HTTP and Redis requests went through lpk-proxy -> tunnel -> lpk-agent.\n' \
  "$green" "$off"
echo "Everything started here is being stopped now."
