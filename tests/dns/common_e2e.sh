# Shared by the dns e2e scripts (sourced). Starts a dnsmasq upstream that answers only from its
# own hosts file (no resolv.conf, no /etc/hosts) and lpk-dns, both on loopback. Every lpk-dns
# started with track_stub must exit 0 within 5 s of SIGTERM with nothing on its stderr, or the
# script fails (and shows that stderr).

need() { command -v "$1" >/dev/null || { echo "SKIP: $1 not installed ($2)"; exit 77; }; }

work=$(mktemp -d /tmp/lpk-dns-e2e.XXXXXX)
chmod 755 "$work"  # dnsmasq drops to nobody and must still read its hosts file
pids=()   # helpers (dnsmasq): ended at exit
stubs=()  # lpk-dns: "PID STDERR-FILE", stopped and judged at exit

# pause: 50 ms, without forking a sleep.
pause() { read -r -t 0.05 <> <(:) || true; }

# track_stub PID STDERR-FILE: an lpk-dns to stop and judge at exit.
track_stub() { stubs+=("$1 $2"); }

# stop_stub PID STDERR-FILE: SIGTERM; it must exit 0 within 5 s with an empty stderr.
stop_stub() {
  local pid=$1 err=$2 status why=""
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"; status=$?
    why="had ended (status $status) before it was stopped"
  else
    kill -TERM "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; pause; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid"; wait "$pid"
      why="did not exit within 5 s of SIGTERM (killed)"
    else
      wait "$pid"; status=$?
      ((status == 0)) || why="exited with status $status after SIGTERM"
    fi
  fi
  [[ -z $why && -s $err ]] && why="wrote to stderr"
  if [[ -n $why ]]; then
    echo "FAIL  lpk-dns (pid $pid) $why; its stderr:"; sed 's/^/      /' "$err"
    return 1
  fi
  echo "ok    lpk-dns (pid $pid) exited 0 on SIGTERM, nothing on stderr"
}

cleanup() {
  local rc=$? entry
  for entry in "${stubs[@]}"; do
    # shellcheck disable=SC2086
    stop_stub $entry || rc=1
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# free_port ADDR: a port free on ADDR now (TCP and UDP), drawn below the ephemeral range, where
# no port-0 bind or outgoing connection lands; a server that still finds it taken tries another.
free_port() {
  /usr/bin/python3 -c '
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(100):
    port = random.randrange(10000, low)
    try:
        with socket.socket() as t, socket.socket(type=socket.SOCK_DGRAM) as u:
            t.bind((sys.argv[1], port))
            u.bind((sys.argv[1], port))
    except OSError:
        continue
    print(port)
    break
else:
    sys.exit("no free port on " + sys.argv[1])
' "$1"
}

# wait_for FILE PATTERN: until a line matching PATTERN appears (bounded).
wait_for() {
  for _ in $(seq 1 100); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    pause
  done
  echo "FAIL: timed out waiting for '$2' in $1"; cat "$1"; exit 1
}

# start_upstream ADDR: dnsmasq on ADDR:$up_port serving $work/upstream-hosts; fails the script
# if it does not answer, tries another port if its port was taken.
start_upstream() {
  up_addr=$1
  cat > "$work/upstream-hosts" <<HOSTS
127.1.2.3 redis.com
127.1.2.4 db.example.org
127.1.2.5 outside.example
127.1.2.9 ready.test
HOSTS
  local attempt pid
  for attempt in 1 2 3 4 5; do
    up_port=$(free_port "$up_addr")
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
    dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" --pid-file= \
      2>"$work/dnsmasq.err" &
    pid=$!
    for _ in $(seq 1 100); do
      if kdig @"$up_addr" -p "$up_port" +short +timeout=1 +retry=0 ready.test 2>/dev/null |
           grep -q 127.1.2.9; then
        pids+=("$pid")
        echo "nameserver $up_addr#$up_port" > "$work/upstream.conf"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      pause
    done
    if ! kill -0 "$pid" 2>/dev/null && grep -q "in use" "$work/dnsmasq.err"; then
      wait "$pid"
      continue  # someone took the port between free_port and dnsmasq's bind
    fi
    kill "$pid" 2>/dev/null
    echo "FAIL: dnsmasq did not answer on $up_addr:$up_port: $(cat "$work/dnsmasq.err")"
    exit 1
  done
  echo "FAIL: dnsmasq found its port taken $attempt times"
  exit 1
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
  track_stub $! "$work/stub.err"
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
