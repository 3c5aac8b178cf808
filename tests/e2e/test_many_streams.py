"""1,000 concurrent streams, each with a distinct payload, echoed back intact (issue 2)."""

import os
import random
import selectors
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402

STREAMS = 1000
HEAD = 1024  # sent first on every stream, before the bulk: proves they are all open at once


class Conn:
    def __init__(self, sock, payload):
        self.sock, self.payload = sock, payload
        self.sent = HEAD
        self.got = bytearray()
        self.eof = False


def pump(conns, deadline):
    """Writes the rest of every payload, half-closes, reads until EOF; all non-blocking."""
    sel = selectors.DefaultSelector()
    for c in conns:
        c.sock.setblocking(False)
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    open_ = len(conns)
    while open_:
        if time.monotonic() > deadline:
            raise AssertionError(f"{open_} streams still open at the deadline")
        for key, ev in sel.select(1.0):
            c = key.data
            if ev & selectors.EVENT_WRITE and c.sent < len(c.payload):
                c.sent += c.sock.send(c.payload[c.sent:c.sent + (1 << 16)])
                if c.sent == len(c.payload):
                    c.sock.shutdown(socket.SHUT_WR)
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                b = c.sock.recv(1 << 16)
                if b:
                    c.got += b
                else:
                    c.eof = True
                    sel.unregister(c.sock)
                    open_ -= 1


class ManyStreamsTest(unittest.TestCase):
    def test_thousand_concurrent_streams(self):
        server = e2e.Server(e2e.echo_handler)
        self.addCleanup(server.close)
        agent = e2e.Agent()
        self.addCleanup(agent.stop)
        proxy = e2e.Proxy(agent.tunnel_str, ["127.0.0.1:0=%s:%d" % server.addr])
        self.addCleanup(proxy.stop)
        rng = random.Random(3)
        conns = []
        self.addCleanup(lambda: [c.sock.close() for c in conns])
        start = time.monotonic()
        for i in range(STREAMS):
            size = rng.randrange(HEAD + 8, 128 << 10)
            payload = i.to_bytes(8, "big") + rng.randbytes(size - 8)
            s = e2e.connect(proxy.listens[0], timeout=30)
            s.sendall(payload[:HEAD])
            conns.append(Conn(s, payload))
        server.wait_for(lambda sv: sv.active >= STREAMS, timeout=60,
                        what=f"{STREAMS} concurrent connections at the target")
        opened = time.monotonic() - start
        pump(conns, time.monotonic() + 120 * e2e.SLACK)
        total = time.monotonic() - start
        print(f"\n  {STREAMS} streams open in {opened:.2f}s, all echoed in {total:.2f}s, "
              f"{sum(len(c.payload) for c in conns) >> 20} MiB each way", flush=True)
        bad = [i for i, c in enumerate(conns) if bytes(c.got) != c.payload]
        self.assertEqual(bad, [], f"{len(bad)} streams came back different, e.g. #{bad[:5]}")
        self.assertEqual(server.peak, STREAMS)
        self.assertEqual(server.errors, [])
        self.assertTrue(proxy.alive() and agent.alive())


if __name__ == "__main__":
    e2e.main()
