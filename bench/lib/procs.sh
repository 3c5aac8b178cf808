# Process helpers for bench/run.sh: start children, wait for them to be ready, read their
# memory, and kill exactly what was started (by pid, with descendants) on exit.
# shellcheck shell=bash

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Every measured process runs in its own session, hence its own scheduler autogroup: sshd's
# session child always does (it calls setsid), so the others must too for a fair share of the
# CPUs when builds share the machine. As root the autogroups get nice $NICE, which puts the
# whole benchmark ahead of those builds.
# shellcheck disable=SC2016
ISOLATE='[ "$0" = 0 ] || echo "$0" >/proc/self/autogroup || exit 97; exec "$@"'

# spawn NAME CMD...: runs CMD isolated in the background with stdout/stderr in
# $TMP/NAME.{out,err}; its pid goes to PIDS and to the variable PID_<NAME>.
spawn() {
  local name=$1; shift
  # A plain background command (not a function) so that $! is CMD itself: setsid and sh exec.
  setsid sh -c "$ISOLATE" "$NICE" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
  local pid=$!
  PIDS+=("$pid")
  printf -v "PID_$name" '%s' "$pid"
}

# run_fg SECS CMD...: runs CMD isolated, bounded by SECS; returns its status. Waiting on a
# background job keeps the script responsive to Ctrl-C (the child has left our session).
run_fg() {
  local secs=$1 pid rc=0
  shift
  timeout "$secs" setsid sh -c "$ISOLATE" "$NICE" "$@" </dev/null &
  pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget "$pid"
  return "$rc"
}

# Drops a pid that has ended from PIDS, so that cleanup never signals a recycled pid.
forget() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# Pids of every descendant of $1, from one snapshot of the process table (socat may have
# a thousand children).
descendants() {
  ps -eo pid=,ppid= | awk -v root="$1" '
    { kids[$2] = kids[$2] " " $1 }
    END {
      n = split(kids[root], queue, " ")
      for (i = 1; i <= n; i++) {
        print queue[i]
        m = split(kids[queue[i]], more, " ")
        for (j = 1; j <= m; j++) queue[++n] = more[j]
      }
    }'
}

# kill_tree PID: TERM to the process and all its descendants (sshd's and socat's children
# leave the process group, so the group is not enough), KILL whatever is left after 2 s.
kill_tree() {
  local pid=$1 all
  # Only our own children: a pid that ended long ago may belong to someone else by now.
  [[ $(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ') == "$$" ]] || { forget "$pid"; return 0; }
  all="$pid $(descendants "$pid")"
  # shellcheck disable=SC2086
  kill -TERM $all 2>/dev/null || true
  local i
  for i in $(seq 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  # shellcheck disable=SC2086
  kill -KILL $all 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}

stop_all() {
  local i
  for (( i=${#PIDS[@]}-1; i>=0; i-- )); do kill_tree "${PIDS[i]}"; done
  PIDS=()
}

# wait_line NAME REGEX SECS: waits until $TMP/NAME.out has a line matching REGEX; prints it.
wait_line() {
  local name=$1 re=$2 secs=$3 pidvar="PID_$1" line i
  for (( i=0; i<secs*20; i++ )); do
    line=$(grep -m1 -E "$re" "$TMP/$name.out" 2>/dev/null || true)
    if [[ -n $line ]]; then echo "$line"; return 0; fi
    if ! kill -0 "${!pidvar}" 2>/dev/null; then
      echo "run.sh: $name exited before printing '$re': $(tail -3 "$TMP/$name.err" | tr '\n' ' ')" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "run.sh: $name did not print '$re' within ${secs}s: $(tail -3 "$TMP/$name.err" | tr '\n' ' ')" >&2
  return 1
}

# wait_port PORT SECS: waits until 127.0.0.1:PORT accepts a connection.
wait_port() {
  local port=$1 secs=$2 i
  for (( i=0; i<secs*20; i++ )); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "run.sh: nothing accepts on 127.0.0.1:$port after ${secs}s" >&2
  return 1
}

# A free port below the ephemeral range (so that no outgoing connection can take it between
# this check and the listener binding it).
free_port() {
  python3 - <<'EOF'
import random, socket
for _ in range(200):
    port = random.randint(20000, 30000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port in 20000-30000")
EOF
}

# Resident memory in KiB: VmRSS of one process.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Sum of VmRSS over a process and its descendants (sshd: listener, monitor, session child).
tree_rss_kib() {
  local total=0 p v
  for p in "$1" $(descendants "$1"); do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# Sum of Pss over a process tree: socat forks one process per connection, whose shared pages
# VmRSS would count once per process.
tree_pss_kib() {
  local total=0 p v
  for p in "$1" $(descendants "$1"); do
    v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# stop_all_on_exit NAME: on exit, however the script ends, stops what spawn/run_fg started and
# removes $TMP, keeping the script's exit code; Ctrl-C or SIGTERM say so (as NAME) and exit 130.
stop_all_on_exit() {
  # shellcheck disable=SC2317  # called by the traps
  _bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    rm -rf "$TMP"
    exit "$rc"
  }
  trap _bench_cleanup EXIT
  # shellcheck disable=SC2064  # NAME now, not at signal time
  trap "echo '$1: interrupted' >&2; exit 130" INT TERM
}
