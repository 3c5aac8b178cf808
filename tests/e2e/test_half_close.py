"""A client that half-closes its write side still receives the whole response (issue 2)."""

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402

RESPONSE = 8 << 20  # large enough that the response is still in flight long after the FIN


class HalfCloseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = e2e.Server(e2e.eof_then_send_handler(RESPONSE, seed=11))
        cls.addClassCleanup(cls.server.close)
        cls.agent = e2e.Agent()
        cls.addClassCleanup(cls.agent.stop)
        target = "%s:%d" % cls.server.addr
        cls.proxy = e2e.Proxy(cls.agent.tunnel_str, [f"127.0.0.1:0={target}"])
        cls.addClassCleanup(cls.proxy.stop)
        cls.addr = cls.proxy.listens[0]
        cls.want = e2e.expected_digest(11, RESPONSE)

    def test_response_after_shut_wr(self):
        request = os.urandom(300_000)
        with e2e.connect(self.addr) as s:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            n, digest = e2e.recv_stream(s)
        self.assertEqual(n, RESPONSE, "response truncated after the client's half-close")
        self.assertEqual(digest, self.want)
        # The server saw the whole request and then our EOF (it only answers after EOF).
        self.server.wait_for(lambda s: s.results, timeout=5, what="server result")
        _, got_n, got_digest = self.server.results[-1]
        self.assertEqual(got_n, len(request))
        self.assertEqual(got_digest, hashlib.sha256(request).hexdigest())

    def test_empty_request_then_shut_wr(self):
        # FIN with no data at all must still reach the server as EOF.
        with e2e.connect(self.addr) as s:
            s.shutdown(socket.SHUT_WR)
            n, digest = e2e.recv_stream(s)
        self.assertEqual((n, digest), (RESPONSE, self.want))

    def test_nc_and_socat_clients(self):
        # `nc -N` and `socat -t` shut down their write side at stdin's EOF and keep reading.
        host, port = self.addr
        clients = {"nc": ["nc", "-N", host, str(port)],
                   "socat": ["socat", "-t", "30", "STDIO", f"TCP:{host}:{port}"]}
        ran = 0
        for tool, argv in clients.items():
            if shutil.which(tool) is None:
                continue
            with self.subTest(tool=tool):
                p = subprocess.run(argv, input=b"hello from " + tool.encode(),
                                   capture_output=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(len(p.stdout), RESPONSE)
                self.assertEqual(hashlib.sha256(p.stdout).hexdigest(), self.want)
                ran += 1
        if not ran:
            self.skipTest("neither nc nor socat installed (run tools/install-deps.sh)")

    def test_server_half_closes_first(self):
        # The other direction: the server answers and shuts down its write side first; the
        # client sees EOF, then still sends its data, which must reach the server intact.
        def handler(c, server):
            c.sendall(b"greeting")
            c.shutdown(socket.SHUT_WR)
            server.record(e2e.recv_stream(c))

        server = e2e.Server(handler)
        self.addCleanup(server.close)
        # An agent of its own: a second proxy's link would replace the class's proxy's link.
        agent = e2e.Agent()
        self.addCleanup(agent.stop)
        proxy = e2e.Proxy(agent.tunnel_str, ["127.0.0.1:0=%s:%d" % server.addr])
        self.addCleanup(proxy.stop)
        with e2e.connect(proxy.listens[0]) as s:
            self.assertEqual(e2e.recv_all(s), b"greeting")
            digest = e2e.send_stream(s, 5, 4 << 20)
            s.shutdown(socket.SHUT_WR)
            server.wait_for(lambda sv: sv.results, timeout=10, what="client data after EOF")
        self.assertEqual(server.results[0], (4 << 20, digest))


if __name__ == "__main__":
    e2e.main()
