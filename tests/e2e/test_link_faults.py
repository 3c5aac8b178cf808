"""What a bad link does to `lpk-proxy run` and `lpk-agent`, through tools/faultrelay (issue 10):
a frozen link (no FIN, no RST) is noticed by both ends within --dead-link-timeout and replaced;
a link that is slow but alive is never cut for a late pong; a dropped link is replaced at once.
"""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402

LOST = r"tunnel to \S+ lost \((.*)\); reconnecting"
SILENT = "the link went silent"


def seconds(n):
    """A --dead-link-timeout of n seconds, stretched in slow (sanitizer) builds."""
    return f"{n * e2e.SLACK:g}s"


class LinkFaultsTest(unittest.TestCase):
    def setUp(self):
        e2e.require_faultrelay(self)
        self.server = e2e.Server(e2e.echo_handler)
        self.addCleanup(self.server.close)

    def start(self, timeout="2s", agent_timeout=None, server=None):
        """agent <- relay <- proxy, with --dead-link-timeout `timeout` (the agent's own when
        given); returns the proxy's listen address for the server."""
        server = server or self.server
        self.agent = e2e.Agent("--dead-link-timeout", agent_timeout or timeout, log_level="info")
        self.relay = e2e.FaultRelay(self.agent.tunnel_str)
        self.proxy = e2e.Proxy(self.relay.addr_str, maps=["127.0.0.1:0=%s:%d" % server.addr],
                               extra=["--dead-link-timeout", timeout], log_level="info")
        self.addCleanup(e2e.stop_all, self.proxy, self.relay, self.agent)
        return self.proxy.listens[0]

    def test_frozen_link_is_noticed_by_both_ends_and_replaced(self):
        # The agent's timeout is the shorter, so that it notices before the proxy's new link
        # would take the frozen one's place.
        listen = self.start(timeout=seconds(3), agent_timeout=seconds(1))
        self.assertEqual(e2e.echo_once(listen), b"ping through lpk\n")
        frozen_at = time.monotonic()
        self.relay.fault("freeze")
        # The agent keeps the session's streams for the proxy's next link (test_resume.py).
        self.agent.wait_line(r"tunnel \S+ from .*: link lost \(" + SILENT, timeout=1 + 3,
                             stderr=True)
        agent_noticed = time.monotonic() - frozen_at
        lost = self.proxy.wait_line(LOST, timeout=3 + 3, stderr=True)
        proxy_noticed = time.monotonic() - frozen_at
        self.assertIn(SILENT, lost.group(1))
        print(f"\n  frozen link noticed by the agent after {agent_noticed:.2f} s "
              f"(timeout {seconds(1)}), by the proxy after {proxy_noticed:.2f} s "
              f"(timeout {seconds(3)})", flush=True)
        # The timeout counts from the last byte heard, which pings keep within a third of it.
        self.assertGreaterEqual(proxy_noticed, 3 * e2e.SLACK * 2 / 3 - 0.1)
        # The proxy dials again (a new relayed connection, not frozen); a connection made
        # meanwhile waits for the new tunnel.
        self.assertEqual(e2e.echo_once(listen, b"after the freeze"), b"after the freeze")

    def test_slow_busy_link_is_not_cut(self):
        # 1.5 MiB through a relay that passes 256 KiB/s and holds each chunk 300 ms: the pongs
        # wait behind seconds of data, longer than the 1 s timeout, but bytes keep coming.
        total = 1536 * 1024
        server = e2e.Server(e2e.eof_then_send_handler(total, seed=7))
        self.addCleanup(server.close)
        listen = self.start(timeout=seconds(1), server=server)
        self.relay.fault("throttle 262144")
        self.relay.fault("delay 300")
        with e2e.connect(listen, timeout=60) as c:
            c.shutdown(socket.SHUT_WR)
            n, digest = e2e.recv_stream(c)
        self.assertEqual(n, total)
        self.assertEqual(digest, e2e.expected_digest(7, total))
        self.assertEqual(self.proxy.matching(LOST, stderr=True), [])

    def test_dropped_link_is_replaced(self):
        listen = self.start(timeout="15s")
        self.assertEqual(e2e.echo_once(listen), b"ping through lpk\n")
        self.assertEqual(self.relay.fault("drop"), "ok dropped 1")
        lost = self.proxy.wait_line(LOST, timeout=5, stderr=True)
        self.assertNotIn(SILENT, lost.group(1))
        self.assertEqual(e2e.echo_once(listen, b"after the drop"), b"after the drop")


if __name__ == "__main__":
    e2e.main()
