# One measurement per function; each appends samples to $RESULTS as JSON lines
# {"metric":..., "peer":..., "rep":..., "value":...}. A failed run records null and says why.
# shellcheck shell=bash disable=SC2154,SC2034  # PID_<name> and PORT are set and read by name

record() {
  local value=${4:-null}
  [[ $value =~ ^-?[0-9.eE+-]+$ ]] || value=null
  printf '{"metric":"%s","peer":"%s","rep":%s,"value":%s}\n' "$1" "$2" "$3" "$value" >>"$RESULTS"
}

# run_iperf PEER REP STREAMS: receiver-side throughput in Gbit/s.
run_iperf() {
  local peer=$1 rep=$2 n=$3 out=$TMP/iperf.json omit=0 v
  (( SECS >= 3 )) && omit=1
  v=null
  if run_fg $((SECS + omit + 20)) iperf3 -c 127.0.0.1 -p "${PORT[$peer.iperf]}" -t "$SECS" \
      -O "$omit" -P "$n" -J >"$out" 2>&1; then
    v=$(jq '.end.sum_received.bits_per_second / 1e9' "$out" 2>/dev/null) || v=null
  fi
  if [[ $v =~ ^[0-9.eE+-]+$ ]]; then
    log "iperf3 -P $n  $peer: $(printf '%.2f' "$v") Gbit/s"
  else
    v=null
    log "iperf3 -P $n  $peer failed: $(grep -m1 -o '"error":.*' "$out" || tail -2 "$out" | tr '\n' ' ')"
  fi
  record "iperf_p$n" "$peer" "$rep" "$v"
}

# run_sockperf PEER REP: 64 B TCP ping-pong; sockperf reports half the round trip, in us.
run_sockperf() {
  local peer=$1 rep=$2 out=$TMP/sockperf.out p50=null p99=null
  if run_fg $((SECS + 20)) sockperf ping-pong --tcp -i 127.0.0.1 -p "${PORT[$peer.sockperf]}" \
      -m 64 -t "$SECS" >"$out" 2>&1; then
    p50=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk '/percentile 50.000 =/ {print $NF}')
    p99=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk '/percentile 99.000 =/ {print $NF}')
    log "sockperf     $peer: p50 ${p50} us, p99 ${p99} us"
  else
    log "sockperf     $peer failed: $(tail -2 "$out" | tr '\n' ' ')"
  fi
  record lat_p50 "$peer" "$rep" "$p50"
  record lat_p99 "$peer" "$rep" "$p99"
}

# run_conn_rate PEER REP CONCURRENCY: new connections/s and connect-to-first-byte latency.
# Metrics are conn1_* for concurrency 1 and connN_* for the --concurrency run.
run_conn_rate() {
  local peer=$1 rep=$2 c=$3 out=$TMP/conn.json key=connN
  [[ $c == 1 ]] && key=conn1
  if run_fg $((CONN_SECS + 30)) "$CONN_BIN" run --connect "127.0.0.1:${PORT[$peer.conn]}" \
      --concurrency "$c" --duration "$CONN_SECS" --warmup 0.3 --timeout 5 \
      >"$out" 2>"$TMP/conn.err"; then
    log "conn c=$c     $peer: $(jq -r '"\(.per_second|floor)/s, p50 \(.p50_us) us, p99 \(.p99_us) us, \(.errors) errors"' "$out")"
  else
    log "conn c=$c     $peer failed: $(head -3 "$TMP/conn.err" | tr '\n' ' ')"
  fi
  [[ -s $TMP/conn.err ]] && log "  $(head -3 "$TMP/conn.err" | tr '\n' ' ')"
  record "${key}_rate" "$peer" "$rep" "$(jq '.per_second' "$out" 2>/dev/null)"
  record "${key}_p50" "$peer" "$rep" "$(jq '.p50_us' "$out" 2>/dev/null)"
  record "${key}_p99" "$peer" "$rep" "$(jq '.p99_us' "$out" 2>/dev/null)"
  record "${key}_errors" "$peer" "$rep" "$(jq '.errors' "$out" 2>/dev/null)"
}

# Memory of the two ends of a relay, KiB: "<client side> <server side>" (server side is
# empty for socat, which is one relay).
relay_mem() {
  case $1 in
    socat) echo "$(tree_pss_kib "$PID_socat_idle_0") -" ;;
    socat2) echo "$(tree_pss_kib "$PID_socat2_idle_outer_0") $(tree_pss_kib "$PID_socat2_idle_inner_0")" ;;
    ssh) echo "$(rss_kib "$PID_ssh_idle") $(tree_rss_kib "$PID_sshd")" ;;
    lpk) echo "$(rss_kib "$PID_lpk_idle_proxy") $(rss_kib "$PID_lpk_idle_agent")" ;;
  esac
}

# run_idle PEER: resident memory per idle open stream on each side of a fresh relay.
run_idle() {
  local peer=$1 n=$IDLE hold_port open still c0 s0 c1 s1
  [[ $peer == socat* ]] && n=$SOCAT_IDLE
  [[ $peer == ssh ]] && n=$SSH_IDLE
  spawn "hold_$peer" "$IDLE_BIN" hold --listen 127.0.0.1:0
  hold_port=$(wait_line "hold_$peer" '^listen ' 10 | awk '{print $2}')
  start_relay "$peer" idle "$hold_port"
  read -r c0 s0 <<<"$(relay_mem "$peer")"
  spawn "open_$peer" "$IDLE_BIN" open --connect "127.0.0.1:${FRONT[0]}" --count "$n" \
    --concurrency 200 --timeout 120 --hold 600
  local open_pid="PID_open_$peer" hold_pid="PID_hold_$peer"
  if ! open=$(wait_line "open_$peer" '"open"' 150); then
    record idle_open "$peer" 1 null
    kill_tree "${!open_pid}"
    kill_tree "${!hold_pid}"
    stop_relay "$peer" idle
    return 0
  fi
  read -r c1 s1 <<<"$(relay_mem "$peer")"
  kill_tree "${!open_pid}"
  still=$(grep -m1 still_open "$TMP/open_$peer.out" | jq '.still_open' || echo null)
  open=$(jq '.open' <<<"$open" 2>/dev/null) || open=0
  log "idle $peer: $open streams open (errors: $(grep -c . "$TMP/open_$peer.err" || true)," \
      "still open at the end: $still); client side ${c0} -> ${c1} KiB, server side ${s0} -> ${s1} KiB"
  record idle_open "$peer" 1 "$open"
  record idle_still_open "$peer" 1 "$still"
  if (( open > 0 )); then
    record idle_client_kib "$peer" 1 "$(awk -v a="$c0" -v b="$c1" -v n="$open" 'BEGIN {print (b - a) / n}')"
    [[ $s0 == - ]] || record idle_server_kib "$peer" 1 \
      "$(awk -v a="$s0" -v b="$s1" -v n="$open" 'BEGIN {print (b - a) / n}')"
  fi
  stop_relay "$peer" idle
  kill_tree "${!hold_pid}"
}

write_meta() {
  local commit
  # lpk's binaries are those of the last build by this script, else of the tree as it is now.
  commit=$(cat "$BUILD/lpk-bench-source" 2>/dev/null || source_commit)
  jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" \
    --argjson nproc "$(nproc)" --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
    --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg commit "$commit" \
    --arg iperf3 "$(iperf3 --version | head -1)" --arg sockperf "$(sockperf --version 2>&1 | head -1)" \
    --arg socat "$(socat -V | awk '/socat version/ {print $3; exit}')" --arg ssh "$(ssh -V 2>&1)" \
    --argjson secs "$SECS" --argjson reps "$REPS" --argjson idle "$IDLE" \
    --argjson socat_idle "$SOCAT_IDLE" --argjson ssh_idle "$SSH_IDLE" --argjson conc "$CONC" --argjson conn_secs "$CONN_SECS" \
    --argjson quick "$QUICK" --argjson nice "$NICE" --arg command "$COMMAND" --argjson socat_buffer "$SOCAT_BUFFER" --arg peers "$PEERS" \
    --arg build_type "$(awk -F= '/^CMAKE_BUILD_TYPE/ {print $2}' "$BUILD/CMakeCache.txt" 2>/dev/null)" \
    '{command:$command, date:$date, kernel:$kernel, nproc:$nproc, cpu:$cpu, loadavg_at_end:$load, commit:$commit,
      tools:{iperf3:$iperf3, sockperf:$sockperf, socat:$socat, ssh:$ssh}, build_type:$build_type,
      options:{secs:$secs, reps:$reps, idle:$idle, socat_idle:$socat_idle, ssh_idle:$ssh_idle, concurrency:$conc,
               conn_secs:$conn_secs, quick:($quick == 1), peers:$peers, nice:$nice},
      socat_buffer_bytes:$socat_buffer, pinned:false}'
}
