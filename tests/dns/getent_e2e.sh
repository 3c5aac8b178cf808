#!/usr/bin/env bash
# The system-resolver path end to end with glibc: in private mount and network namespaces (port
# 53 is then ours, whatever else runs on the machine), a test file is bind-mounted over
# /etc/resolv.conf, `lpk-dns resolver install` points it at the stub (port 53
# on a loopback address), and getent resolves cluster names through the stub and an outside
# name through the stub's forwarding to the "original" resolver (a dnsmasq started here).
# `resolver uninstall` must then restore the file byte for byte. The machine's own
# /etc/resolv.conf is never touched: the bind mount exists only in this namespace.
set -uo pipefail
LPK_DNS=${1:?usage: getent_e2e.sh path/to/lpk-dns}
if [[ $EUID -ne 0 ]]; then
  echo "SKIP: needs root (unshare -m -n, bind mount over /etc/resolv.conf, port 53); CI runs as root"
  exit 77
fi
for tool in unshare getent dnsmasq kdig mount; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; exit 77; }
done
if [[ -z ${LPK_DNS_IN_NAMESPACE:-} ]]; then
  exec unshare -m -n env LPK_DNS_IN_NAMESPACE=1 "$0" "$@"
fi
mount --make-rprivate / || { echo "SKIP: cannot make mounts private here"; exit 77; }
ip link set lo up || { echo "FAIL: cannot bring up lo in the test's network namespace"; exit 1; }
source "$(dirname "$0")/common_e2e.sh"

# The "original" resolver of this namespace: dnsmasq on port 53 of its own loopback address.
up_addr=127.0.53.2
cat > "$work/upstream-hosts" <<HOSTS
127.1.2.5 outside.example
HOSTS
dnsmasq --keep-in-foreground --no-resolv --no-hosts --conf-file=/dev/null \
  --addn-hosts="$work/upstream-hosts" --listen-address=$up_addr --bind-interfaces --port=53 \
  --pid-file= --log-facility="$work/dnsmasq.log" 2>"$work/dnsmasq.err" &
pids+=($!)
up=0
for _ in $(seq 1 100); do
  kdig @$up_addr +short +timeout=1 +retry=0 outside.example 2>/dev/null | grep -q 127.1.2.5 &&
    { up=1; break; }
  pause
done
((up)) || { echo "FAIL: dnsmasq did not answer on $up_addr:53: $(cat "$work/dnsmasq.err")"; exit 1; }

original=$'# test resolv.conf\nnameserver 127.0.53.2\nsearch corp.example\noptions edns0\n'
printf '%s' "$original" > "$work/resolv.conf"
cp "$work/resolv.conf" "$work/resolv.conf.expected"
mount --bind "$work/resolv.conf" /etc/resolv.conf

stub=127.77.0.53
expect 0 sh -c "'$LPK_DNS' resolver install --force --resolv-conf /etc/resolv.conf --backup '$work/backup' \
  --address $stub --namespace dev --mode resolv.conf >/dev/null; echo \$?"
echo "--- /etc/resolv.conf now:"; cat /etc/resolv.conf; echo "---"

write_table
# The stub forwards to the resolvers saved in the backup: the machine's originals.
start_stub_plain() {
  "$LPK_DNS" --table "$work/table.json" --listen $stub:53 --resolv-conf "$work/backup" \
    > "$work/stub.out" 2> "$work/stub.err" &
  track_stub $! "$work/stub.err"
  wait_for "$work/stub.out" '^listen '
}
start_stub_plain

first() { "$@" | awk '{print $1}' | sort -u; }
expect "127.77.0.12" first getent hosts redis
expect "127.77.0.12" first getent hosts redis.dev
expect "127.77.0.12" first getent hosts redis.dev.svc.cluster.local
expect "127.77.0.12" first getent ahosts redis
expect "127.77.0.12" first getent ahosts redis.dev
expect "127.77.0.12" first getent ahosts redis.dev.svc.cluster.local
expect "127.77.1.1 127.77.1.2" first getent ahosts web
expect "127.1.2.5" first getent hosts outside.example
expect "127.1.2.5" first getent ahosts outside.example

expect 0 sh -c "'$LPK_DNS' resolver uninstall --resolv-conf /etc/resolv.conf --backup '$work/backup' \
  --mode resolv.conf >/dev/null; echo \$?"
expect "identical" sh -c "cmp -s /etc/resolv.conf '$work/resolv.conf.expected' && echo identical"

if ((fails)); then echo "$fails checks failed"; cat "$work/stub.err"; exit 1; fi
echo "all getent checks passed"
