#!/usr/bin/env bash
# lpk-dns answered to the real kdig, over UDP and TCP, for every name form and record type of
# issue 3; outside names forwarded to a dnsmasq upstream started here (never the machine's).
set -uo pipefail
LPK_DNS=${1:?usage: kdig_e2e.sh path/to/lpk-dns}
source "$(dirname "$0")/common_e2e.sh"
need kdig "apt-get install knot-dnsutils"
need dnsmasq "apt-get install dnsmasq-base"

start_upstream 127.0.0.2
write_table
start_stub 127.0.0.1:0

for transport in +notcp +tcp; do
  q() { kdig @"$stub_addr" -p "$stub_port" "$transport" +timeout=2 +retry=0 "$@"; }
  short() { q +short "$@"; }
  header() { q +noall +header "$@" | grep -o 'status: [A-Z]*\|ANSWER: [0-9]*\|AUTHORITY: [0-9]*'; }
  echo "== $transport"
  for name in redis redis.dev redis.dev.svc redis.dev.svc.cluster.local \
              REDIS.Dev.Svc.Cluster.Local. rEdIs.DEV; do
    expect "127.77.0.12" short "$name" A
  done
  expect "127.77.0.13" short api.other A
  expect "127.77.0.13" short api.other.svc.cluster.local A
  expect "ANSWER: 0 AUTHORITY: 1 status: NOERROR" header redis.dev AAAA
  expect "0 100 6379 redis.dev.svc.cluster.local." short _redis._tcp.redis.dev.svc.cluster.local SRV
  expect "0 100 8080 web-0.web.dev.svc.cluster.local. 0 100 8080 web-1.web.dev.svc.cluster.local." \
    short _http._tcp.web.dev.svc.cluster.local SRV
  expect "redis.dev.svc.cluster.local." short -x 127.77.0.12
  expect "web-1.web.dev.svc.cluster.local." short -x 127.77.1.2
  expect "127.77.1.1 127.77.1.2" short web.dev.svc.cluster.local A
  expect "127.77.1.1 127.77.1.2" short web A
  expect "127.77.1.1" short web-0.web.dev.svc.cluster.local A
  expect "127.77.1.2" short web-1.web.dev A
  expect "127.1.2.4 db.example.org." short ext.dev.svc.cluster.local A
  expect "db.example.org." short ext CNAME
  expect '"1.1.0"' short dns-version.cluster.local TXT
  expect "ANSWER: 0 AUTHORITY: 1 status: NXDOMAIN" header nope.dev.svc.cluster.local A
  expect "ANSWER: 0 AUTHORITY: 1 status: NXDOMAIN" header web-2.web.dev.svc.cluster.local A
  expect "127.1.2.3" short redis.com A
  expect "127.1.2.3" short REDIS.COM A
  expect "127.1.2.5" short outside.example A
  # dnsmasq without upstreams refuses what it does not know; the stub relays that rcode as is.
  expect "ANSWER: 0 AUTHORITY: 0 status: REFUSED" header unknown.example A
done

# The same server on IPv6 loopback, when the machine has ::1.
if ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128'; then
  "$LPK_DNS" --table "$work/table.json" --listen '[::1]:0' --resolv-conf "$work/upstream.conf" \
    > "$work/stub6.out" 2> "$work/stub6.err" &
  track_stub $! "$work/stub6.err"
  wait_for "$work/stub6.out" '^listen '
  port6=$(sed -n 's/^listen .*://p' "$work/stub6.out")
  for transport in +notcp +tcp; do
    expect "127.77.0.12" kdig @::1 -p "$port6" "$transport" +short +timeout=2 +retry=0 redis.dev A
  done
else
  echo "skip  IPv6 checks: no ::1 on lo"
fi

# Four queries for redis.com reached the stub; the upstream saw one, the rest were cached.
expect "1" grep -ci 'query\[A\] redis.com from' "$work/dnsmasq.log"

if ((fails)); then echo "$fails checks failed"; exit 1; fi
echo "all kdig checks passed"
