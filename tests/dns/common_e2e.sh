# Shared by the dns e2e scripts (sourced). Starts a dnsmasq upstream that answers only from its
# own hosts file (no resolv.conf, no /etc/hosts) and lpk-dns, both on loopback.

need() { command -v "$1" >/dev/null || { echo "SKIP: $1 not installed ($2)"; exit 77; }; }

work=$(mktemp -d /tmp/lpk-dns-e2e.XXXXXX)
chmod 755 "$work"  # dnsmasq drops to nobody and must still read its hosts file
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for FILE PATTERN: until a line matching PATTERN appears (bounded).
wait_for() {
  for _ in $(seq 1 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    read -r -t 0.05 <> <(:) || true
  done
  echo "FAIL: timed out waiting for '$2' in $1"; cat "$1"; exit 1
}

# start_upstream ADDR: dnsmasq on ADDR:$up_port serving $work/upstream-hosts.
start_upstream() {
  up_addr=$1
  up_port=$(free_port)
  cat > "$work/upstream-hosts" <<HOSTS
127.1.2.3 redis.com
127.1.2.4 db.example.org
127.1.2.5 outside.example
127.1.2.9 ready.test
HOSTS
  cat > "$work/dnsmasq.conf" <<CONF
no-resolv
no-hosts
addn-hosts=$work/upstream-hosts
listen-address=$up_addr
bind-interfaces
port=$up_port
local-ttl=60
log-queries
log-facility=$work/dnsmasq.log
CONF
  dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" --pid-file= &
  pids+=($!)
  for _ in $(seq 1 100); do
    kdig @"$up_addr" -p "$up_port" +short +timeout=1 +retry=0 ready.test 2>/dev/null | grep -q 127.1.2.9 && break
  done
  echo "nameserver $up_addr#$up_port" > "$work/upstream.conf"
}

write_table() {
  cat > "$work/table.json" <<'JSON'
{"zone": "cluster.local", "namespace": "dev", "namespaces": ["dev", "other"], "ttl": 5,
 "services": [
  {"name": "redis", "namespace": "dev", "address": "127.77.0.12",
   "ports": [{"name": "redis", "port": 6379, "protocol": "TCP"}]},
  {"name": "api", "namespace": "other", "address": "127.77.0.13",
   "ports": [{"name": "http", "port": 80}]},
  {"name": "web", "namespace": "dev", "headless": true,
   "ports": [{"name": "http", "port": 8080}],
   "endpoints": [{"address": "127.77.1.1", "hostname": "web-0"},
                 {"address": "127.77.1.2", "hostname": "web-1"},
                 {"address": "127.77.1.3", "hostname": "web-2", "ready": false}]},
  {"name": "ext", "namespace": "dev", "externalName": "db.example.org"}
 ]}
JSON
}

# start_stub ADDR:PORT: lpk-dns forwarding to the dnsmasq upstream; sets stub_addr, stub_port.
start_stub() {
  "$LPK_DNS" --table "$work/table.json" --listen "$1" --resolv-conf "$work/upstream.conf" \
    > "$work/stub.out" 2> "$work/stub.err" &
  pids+=($!)
  wait_for "$work/stub.out" '^listen '
  local ep
  ep=$(sed -n 's/^listen //p' "$work/stub.out")
  stub_addr=${ep%:*}
  stub_port=${ep##*:}
}

fails=0
# expect WANT CMD...: the command's output lines, sorted and joined by spaces, equal WANT.
expect() {
  local want=$1; shift
  local got
  got=$("$@" 2>&1 | sort | paste -sd' ' -)
  if [[ "$got" == "$want" ]]; then
    echo "ok    $*"
  else
    echo "FAIL  $*"; echo "      got:  '$got'"; echo "      want: '$want'"
    fails=$((fails + 1))
  fi
}
