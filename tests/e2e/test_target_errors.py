"""A refused or unreachable target closes the client's connection promptly, and the tunnel
stays up: a following stream works over the same link, without a reconnect (issue 2)."""

import os
import random
import shutil
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402


class NetNs(e2e.Netns):
    """A network namespace created (and deleted) by the test; needs root."""

    def __init__(self, prefix="lpke2e"):
        super().__init__(f"{prefix}{os.getpid()}_{random.randrange(1 << 20)}")
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args):
        subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def can_use_netns():
    if os.geteuid() != 0:
        return "needs root to create a network namespace"
    if shutil.which("ip") is None:
        return "needs `ip` (iproute2)"
    return None


REFUSED_WITHIN = 2.0
CONNECT_TIMEOUT = 1  # the agent's --connect-timeout in the namespace test


def closed_port(sock_factory=socket.socket):
    """A socket bound to a port without listening: connections to it are refused (RST).
    The caller keeps it open so that nobody else takes the port meanwhile."""
    s = sock_factory()
    s.bind(("127.0.0.1", 0))
    return s


def link_ports(agent, netns=None):
    """The proxy-side ports of the tunnel connections to this agent (one per link)."""
    return sorted(p for p, _ in e2e.established_ports(agent.tunnel[1], "dport", netns))


class RefusedTargetTest(unittest.TestCase):
    def test_refused_closes_promptly_and_tunnel_stays(self):
        hole = closed_port()
        self.addCleanup(hole.close)
        server = e2e.Server(e2e.echo_handler)
        self.addCleanup(server.close)
        agent = e2e.Agent()
        self.addCleanup(agent.stop)
        proxy = e2e.Proxy(agent.tunnel_str, ["127.0.0.1:0=127.0.0.1:%d" % hole.getsockname()[1],
                                             "127.0.0.1:0=%s:%d" % server.addr])
        self.addCleanup(proxy.stop)
        refused_at, echo_at = proxy.listens
        links = link_ports(agent)
        self.assertEqual(len(links), 1, f"expected one tunnel link, ss shows {links}")
        # A stream already open must not be disturbed by its neighbours' failures.
        live = e2e.connect(echo_at)
        self.addCleanup(live.close)
        live.sendall(b"before ")
        times = []
        for _ in range(20):
            # The request may be lost: nobody is there to take it.
            secs, data = e2e.open_until_closed(refused_at, b"GET / HTTP/1.0\r\n\r\n")
            self.assertEqual(data, b"", "a refused stream delivered data")
            times.append(secs)
        print(f"\n  refused: client closed after max {max(times) * 1e3:.1f} ms, "
              f"median {sorted(times)[len(times) // 2] * 1e3:.1f} ms", flush=True)
        self.assertLess(max(times), REFUSED_WITHIN * e2e.SLACK)
        live.sendall(b"after")
        live.shutdown(socket.SHUT_WR)
        self.assertEqual(e2e.recv_all(live), b"before after")
        live.close()
        self.assertEqual(e2e.echo_once(echo_at, b"next stream"), b"next stream")
        self.assertEqual(link_ports(agent), links, "the tunnel was re-established")
        self.assertTrue(proxy.alive() and agent.alive())


class UnreachableTargetTest(unittest.TestCase):
    """Runs agent and proxy inside a network namespace the test creates, where one prefix has
    an `unreachable` route (connect fails at once with EHOSTUNREACH) and another is routed to lo
    without being a local address, so its packets vanish (connect hangs until the agent's
    --connect-timeout)."""

    @classmethod
    def setUpClass(cls):
        reason = can_use_netns()
        if reason:
            raise unittest.SkipTest(reason)
        cls.ns = NetNs()
        cls.addClassCleanup(cls.ns.delete)
        cls.ns.ip("route", "add", "unreachable", "10.254.1.0/24")
        # Routed to lo but not a local address: the namespace drops these SYNs silently.
        cls.ns.ip("route", "add", "10.254.2.0/24", "dev", "lo")
        sock = cls.ns.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        cls.server = e2e.Server(e2e.echo_handler, sock=sock)
        cls.addClassCleanup(cls.server.close)
        cls.agent = e2e.Agent("--connect-timeout", str(CONNECT_TIMEOUT), netns=cls.ns)
        cls.addClassCleanup(cls.agent.stop)
        cls.proxy = e2e.Proxy(cls.agent.tunnel_str, [
            "127.0.0.1:0=10.254.1.7:80", "127.0.0.1:0=10.254.2.2:80",
            "127.0.0.1:0=%s:%d" % cls.server.addr], netns=cls.ns)
        cls.addClassCleanup(cls.proxy.stop)
        cls.unreachable, cls.dropped, cls.echo = cls.proxy.listens

    def check_closed(self, addr, low, high):
        links = link_ports(self.agent, self.ns)
        self.assertEqual(len(links), 1, f"expected one tunnel link, ss shows {links}")
        secs, data = e2e.open_until_closed(addr, b"hello?", timeout=20, netns=self.ns)
        print(f"\n  client closed after {secs * 1e3:.0f} ms", flush=True)
        self.assertEqual(data, b"")
        self.assertGreaterEqual(secs, low)
        self.assertLess(secs, high * e2e.SLACK)
        self.assertEqual(e2e.echo_once(self.echo, b"still up", netns=self.ns), b"still up")
        self.assertEqual(link_ports(self.agent, self.ns), links, "the tunnel was re-established")

    def test_unreachable_route(self):
        self.check_closed(self.unreachable, 0, REFUSED_WITHIN)

    def test_dropped_packets_hit_connect_timeout(self):
        # At least most of the timeout: proves the packets really vanish in this namespace.
        self.check_closed(self.dropped, CONNECT_TIMEOUT * 0.8, CONNECT_TIMEOUT + 2)


if __name__ == "__main__":
    e2e.main()
