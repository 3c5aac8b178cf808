"""1 GiB each way at the same time arrives with identical sha256 (issue 2; label heavy)."""

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402

SIZE = int(os.environ.get("LPK_E2E_BULK_BYTES", 1 << 30))


def full_duplex(sock, seed, out):
    """Sends SIZE bytes while receiving to EOF on the same socket; fills out[...]."""
    def sender():
        out["sent"] = e2e.send_stream(sock, seed, SIZE)
        sock.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=sender)
    t.start()
    out["received"] = e2e.recv_stream(sock)
    t.join()


class BulkTest(unittest.TestCase):
    def test_one_gib_each_way(self):
        def handler(c, server):
            out = {}
            full_duplex(c, 2002, out)
            server.record(out)

        server = e2e.Server(handler)
        self.addCleanup(server.close)
        agent = e2e.Agent()
        self.addCleanup(agent.stop)
        proxy = e2e.Proxy(agent.tunnel_str, ["127.0.0.1:0=%s:%d" % server.addr])
        self.addCleanup(proxy.stop)
        start = time.monotonic()
        client = {}
        with e2e.connect(proxy.listens[0], timeout=600) as s:
            full_duplex(s, 1001, client)
        server.wait_for(lambda sv: sv.results, timeout=30, what="server side done")
        secs = time.monotonic() - start
        srv = server.results[0]
        print(f"\n  {SIZE >> 20} MiB each way in {secs:.1f}s "
              f"({2 * SIZE * 8 / secs / 1e9:.2f} Gbit/s both directions)", flush=True)
        self.assertEqual(server.errors, [])
        self.assertEqual(srv["received"], (SIZE, client["sent"]), "client -> server")
        self.assertEqual(client["received"], (SIZE, srv["sent"]), "server -> client")


if __name__ == "__main__":
    e2e.main()
