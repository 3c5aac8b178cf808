#!/usr/bin/python3
"""A UDP echo server for kubesim pods and tests: answers every datagram to its sender, unchanged.
Usage: udp_echo.py PORT (binds every IPv4 address of the pod)."""

import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
sock.bind(("0.0.0.0", int(sys.argv[1])))
print(f"udp echo on port {sys.argv[1]}", flush=True)
while True:
    data, peer = sock.recvfrom(65536)
    sock.sendto(data, peer)
