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


    def test_out_of_descriptors_refuses_at_once_and_says_so_rarely(self):
        # Issue 9: with a low `ulimit -n`, connections the proxy cannot hold are reset at once
        # instead of waiting in the listen backlog for a server that never reads them, the ones
        # it holds are served, and it says so once in a while, not once per failed accept.
        server = e2e.Server(e2e.echo_handler)
        self.addCleanup(server.close)
        agent = e2e.Agent()
        self.addCleanup(agent.stop)
        argv = ["prlimit", "--nofile=96:96", e2e.PROXY, "run", "--agent", agent.tunnel_str,
                "--log-level", "warn", "--pool", e2e.private_pool(),
                "--map", "127.0.0.1:0=%s:%d" % server.addr]
        proxy = e2e.Proc(argv, name="lpk-proxy (nofile 96)")
        self.addCleanup(proxy.stop)
        listen = e2e.split_hostport(proxy.wait_line(e2e.PROXY_LINES["listen"]).group(1))
        proxy.wait_line(e2e.PROXY_LINES["ready"], timeout=10)
        conns = []
        self.addCleanup(lambda: [c.close() for c in conns])
        served = refused = 0
        for _ in range(400):  # the kernel completes every handshake into the backlog
            try:
                c = e2e.connect(listen, timeout=10)
            except ConnectionResetError:
                refused += 1  # reset before this side even saw the connection up
                continue
            conns.append(c)
            try:
                c.sendall(b"x")
            except (ConnectionResetError, BrokenPipeError):
                refused += 1
                conns.pop().close()
        sel = selectors.DefaultSelector()
        for c in conns:
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ)
        deadline = time.monotonic() + 15 * e2e.SLACK
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(1.0):
                try:
                    data = key.fileobj.recv(16)
                except ConnectionResetError:
                    data = b""
                served += data == b"x"
                refused += data != b"x"
                sel.unregister(key.fileobj)
        hung = len(sel.get_map())
        warnings = [l for l in proxy.err if "out of file descriptors" in l]
        print(f"\n  nofile 96: {served} served, {refused} refused at once, {hung} left waiting; "
              f"{len(warnings)} warning line(s)", flush=True)
        self.assertEqual(hung, 0, proxy.describe())
        self.assertGreater(served, 0, proxy.describe())
        self.assertGreater(refused, 0, proxy.describe())
        self.assertLessEqual(len(warnings), 5, "\n".join(warnings[:10]))
        self.assertTrue(proxy.alive() and agent.alive())

if __name__ == "__main__":
    e2e.main()
