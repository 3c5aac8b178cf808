# The things measured by bench/run.sh: the target servers, and the four peers that sit between
# client and target (raw: nothing; socat; ssh -L to a private sshd; lpk-proxy + lpk-agent).
# shellcheck shell=bash disable=SC2154,SC2034  # PID_<name> and PORT are set and read by name

declare -A PORT     # "<peer>.<kind>" -> front port the clients connect to
SOCAT_BUFFER=8192   # socat's default -b (bytes per read/write), recorded in the results

# The commit the working tree is at, with -dirty when proxy/ or agent/ differ from it.
source_commit() {
  local commit
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [[ -z $(git -C "$ROOT" status --porcelain -- proxy agent 2>/dev/null) ]] || commit+="-dirty"
  echo "$commit"
}

build_binaries() {
  CONN_BIN=$BUILD/bench/lpk_bench_conn_rate
  IDLE_BIN=$BUILD/bench/lpk_bench_idle_streams
  AGENT_BIN=$BUILD/agent/lpk-agent
  PROXY_BIN=$BUILD/proxy/lpk-proxy
  if [[ $BUILD_IT == 1 ]]; then
    if [[ ! -f $BUILD/CMakeCache.txt ]]; then
      log "configuring $BUILD (Release)"
      cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLPK_TESTS=OFF \
        >"$TMP/build.log" 2>&1 || { tail -20 "$TMP/build.log" >&2; exit 1; }
    fi
    log "building the benchmark drivers in $BUILD"
    cmake --build "$BUILD" -j2 --target lpk_bench_conn_rate lpk_bench_idle_streams \
      >>"$TMP/build.log" 2>&1 || { tail -30 "$TMP/build.log" >&2; exit 1; }
    if [[ " $PEERS " == *" lpk "* ]]; then
      log "building lpk-agent and lpk-proxy"
      if cmake --build "$BUILD" -j2 --target lpk-agent lpk-proxy >>"$TMP/build.log" 2>&1; then
        source_commit >"$BUILD/lpk-bench-source"  # what the binaries were built from
      else
        tail -20 "$TMP/build.log" >&2
        log "lpk-agent/lpk-proxy did not build: the lpk column is left empty"
      fi
    fi
  fi
  for b in "$CONN_BIN" "$IDLE_BIN"; do
    [[ -x $b ]] || { echo "run.sh: $b is missing; run without --no-build" >&2; exit 1; }
  done
  if [[ " $PEERS " == *" lpk "* && ! ( -x $AGENT_BIN && -x $PROXY_BIN ) ]]; then
    log "no $AGENT_BIN / $PROXY_BIN: skipping the lpk peer"
    PEERS=${PEERS//lpk/}
  fi
}

# wait_listen PORT SECS: waits until something listens on 127.0.0.1:PORT, without connecting
# (a probe connection would count against the relay's memory or confuse iperf3).
wait_listen() {
  local port=$1 secs=$2 i
  for (( i=0; i<secs*20; i++ )); do
    [[ -n $(ss -Hltn "sport = :$port" 2>/dev/null) ]] && return 0
    sleep 0.05
  done
  echo "run.sh: nothing listens on 127.0.0.1:$port after ${secs}s" >&2
  return 1
}

start_targets() {
  T_IPERF=$(free_port)
  spawn iperf3 iperf3 -s -B 127.0.0.1 -p "$T_IPERF" --forceflush
  T_SOCKPERF=$(free_port)
  spawn sockperf sockperf server --tcp -i 127.0.0.1 -p "$T_SOCKPERF"
  spawn conn_srv "$CONN_BIN" serve --listen 127.0.0.1:0
  T_CONN=$(wait_line conn_srv '^listen ' 10 | awk '{print $2}')
  wait_listen "$T_IPERF" 10
  wait_listen "$T_SOCKPERF" 10
  log "targets: iperf3 :$T_IPERF, sockperf :$T_SOCKPERF, 1-byte echo :$T_CONN"
}

# start_relay PEER TAG TARGET_PORT...: puts one front port per target into FRONT.
start_relay() {
  local peer=$1 tag=$2
  shift 2
  FRONT=()
  case $peer in
    raw) FRONT=("$@") ;;
    socat) start_socat "socat_$tag" "$@" ;;
    socat2) start_socat2 "$tag" "$@" ;;
    ssh) start_ssh "$tag" "$@" ;;
    lpk) start_lpk "$tag" "$@" ;;
  esac
}

stop_relay() {
  local peer=$1 tag=$2 var
  for var in $(compgen -v "PID_${peer}_${tag}"); do kill_tree "${!var}"; done
}

# start_socat NAME TARGET...: one socat per target, spawned as NAME_0, NAME_1...
start_socat() {
  local name=$1 i=0 t p
  shift
  for t in "$@"; do
    p=$(free_port)
    # backlog: socat's default of 5 would drop SYNs in the connection-rate test.
    spawn "${name}_$i" socat "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,fork,backlog=4096" \
      "TCP:127.0.0.1:$t"
    wait_listen "$p" 10
    FRONT+=("$p")
    i=$((i + 1))
  done
}

# Two socat relays in series: the same number of relay processes as lpk (proxy and agent)
# and ssh -L, without multiplexing; it separates the cost of a second hop from lpk's own.
start_socat2() {
  local tag=$1 inner
  shift
  start_socat "socat2_${tag}_inner" "$@"
  inner=("${FRONT[@]}")
  FRONT=()
  start_socat "socat2_${tag}_outer" "${inner[@]}"
}

# A private sshd on a free loopback port with generated host and user keys.
start_sshd() {
  local dir=$TMP/ssh
  mkdir -p "$dir"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/user_ed25519"
  cp "$dir/user_ed25519.pub" "$dir/authorized_keys"
  SSHD_PORT=$(free_port)
  cat >"$dir/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding yes
Ciphers aes128-gcm@openssh.com
Compression no
UseDNS no
LogLevel ERROR
EOF
  # sshd running as root insists on its privilege-separation directory.
  [[ $(id -u) != 0 ]] || mkdir -p /run/sshd
  /usr/sbin/sshd -t -f "$dir/sshd_config" || { echo "run.sh: sshd rejects its config" >&2; exit 1; }
  spawn sshd /usr/sbin/sshd -D -e -f "$dir/sshd_config"
  wait_listen "$SSHD_PORT" 10
}

# One ssh connection (a ControlMaster) carrying one -L forward per target.
start_ssh() {
  local tag=$1 dir=$TMP/ssh t p fwd=()
  shift
  [[ -n ${SSHD_PORT:-} ]] || start_sshd
  for t in "$@"; do
    p=$(free_port)
    fwd+=(-L "127.0.0.1:$p:127.0.0.1:$t")
    FRONT+=("$p")
  done
  spawn "ssh_${tag}" ssh -N -F /dev/null -c aes128-gcm@openssh.com -o Compression=no \
    -o BatchMode=yes -o IdentitiesOnly=yes -i "$dir/user_ed25519" \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile="$dir/known_hosts" \
    -o ExitOnForwardFailure=yes -o ControlMaster=yes -o ControlPath="$dir/ctl-$tag" \
    -p "$SSHD_PORT" "${fwd[@]}" "$(id -un)@127.0.0.1"
  for p in "${FRONT[@]}"; do wait_listen "$p" 15; done
  # sshd's session child made itself a new session (autogroup); give it the same nice.
  if [[ $NICE != 0 ]]; then
    for p in $(descendants "$PID_sshd"); do echo "$NICE" >"/proc/$p/autogroup" 2>/dev/null || true; done
  fi
}

# console_pattern BINARY TABLE-FLAG NAME: the regular expression of one of the stdout lines the
# binary declares (lpk-agent --console-lines, lpk-proxy __console-lines).
console_pattern() {
  "$1" "$2" | python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]]["pattern"])' "$3"
}

# lpk-agent on an ephemeral tunnel port, lpk-proxy with one ephemeral listener per target.
start_lpk() {
  local tag=$1 t line maps=() tunnel_re listen_re ready_re
  shift
  tunnel_re=$(console_pattern "$AGENT_BIN" --console-lines tunnel)
  listen_re=$(console_pattern "$PROXY_BIN" __console-lines listen)
  ready_re=$(console_pattern "$PROXY_BIN" __console-lines ready)
  spawn "lpk_${tag}_agent" "$AGENT_BIN" --listen 127.0.0.1:0 --log-level warn
  line=$(wait_line "lpk_${tag}_agent" "$tunnel_re" 10)
  [[ $line =~ $tunnel_re ]]
  for t in "$@"; do maps+=(--map "127.0.0.1:0=127.0.0.1:$t"); done
  spawn "lpk_${tag}_proxy" "$PROXY_BIN" run --agent "${BASH_REMATCH[1]}" "${maps[@]}" --log-level warn
  wait_line "lpk_${tag}_proxy" "$ready_re" 15 >/dev/null
  while read -r line; do
    [[ $line =~ $listen_re ]] && FRONT+=("${BASH_REMATCH[1]##*:}")
  done <"$TMP/lpk_${tag}_proxy.out"
  [[ ${#FRONT[@]} == "$#" ]] || { echo "run.sh: lpk-proxy printed ${#FRONT[@]} listen lines for $# maps" >&2; exit 1; }
}

# The long-lived relay of each peer for throughput, latency and connection rate.
start_peer() {
  start_relay "$1" main "$T_IPERF" "$T_SOCKPERF" "$T_CONN"
  PORT[$1.iperf]=${FRONT[0]}
  PORT[$1.sockperf]=${FRONT[1]}
  PORT[$1.conn]=${FRONT[2]}
  log "$1: iperf3 :${FRONT[0]}, sockperf :${FRONT[1]}, echo :${FRONT[2]}"
}

stop_peer() { stop_relay "$1" main; }

# peer_down PEER: true when a long-lived relay process of PEER has exited (says why, once), so
# that the remaining tests of that peer are skipped instead of each waiting for its timeout.
declare -A DOWN_LOGGED
peer_down() {
  local var name
  for var in $(compgen -v "PID_${1}_main"); do
    kill -0 "${!var}" 2>/dev/null && continue
    name=${var#PID_}
    [[ -n ${DOWN_LOGGED[$1]:-} ]] ||
      log "$1: $name exited; skipping its remaining tests: $(tail -3 "$TMP/$name.err" | tr '\n' ' ')"
    DOWN_LOGGED[$1]=1
    return 0
  done
  return 1
}
