#!/usr/bin/python3
"""A UDP echo server for kubesim pods and tests: answers every datagram to its sender, unchanged.
With a second port it is also a statsd-style receiver there: `NAME:VALUE|c` datagrams add to
counter NAME and get no answer (as statsd's clients expect none); `#totals` gets the counters
back as JSON.
Usage: udp_echo.py PORT [STATSD_PORT] (binds every IPv4 address of the pod)."""

import json
import re
import select
import socket
import sys

COUNTER = re.compile(rb"^([A-Za-z0-9_.-]+):(-?\d+)\|c$")


def bound(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    return sock


echo = bound(int(sys.argv[1]))
statsd = bound(int(sys.argv[2])) if len(sys.argv) > 2 else None
totals = {}
print(f"udp echo on port {sys.argv[1]}" + (f", statsd on {sys.argv[2]}" if statsd else ""),
      flush=True)
while True:
    ready, _, _ = select.select([s for s in (echo, statsd) if s], [], [])
    for sock in ready:
        data, peer = sock.recvfrom(65536)
        if sock is echo:
            sock.sendto(data, peer)
        elif data == b"#totals":
            sock.sendto(json.dumps(totals).encode(), peer)
        elif m := COUNTER.match(data):
            name = m.group(1).decode()
            totals[name] = totals.get(name, 0) + int(m.group(2))
