"""Inbound: `lpk-agent --serve P` + `lpk-proxy --local-port LOCAL:P`: a connection to the
agent's port P reaches a server on this machine's port LOCAL, both directions intact (issue 2)."""

import hashlib
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lpk_e2e as e2e  # noqa: E402

RESPONSE = 2 << 20


class InboundTest(unittest.TestCase):
    def start(self, n_served, local_port_flags):
        """An agent serving `n_served` ports and a proxy with --local-port flags made by
        local_port_flags(served ports); returns the served (address, port)s."""

        def attempt():
            address = e2e.private_address()
            ports = [e2e.free_port(address) for _ in range(n_served)]
            extra = ["--serve-address", address]
            for p in ports:
                extra += ["--serve", str(p)]
            agent = e2e.Agent(*extra)
            self.addCleanup(agent.stop)
            # A port the agent could not bind is named on stderr and gets no `serve` line.
            try:
                served = [e2e.split_hostport(m.group(1))
                          for m in agent.wait_lines(e2e.AGENT_LINES["serve"], n_served)]
            except AssertionError:
                if any("in use" in l for l in agent.err):
                    raise e2e.PortInUse() from None
                raise
            self.assertEqual(sorted(served), sorted((address, p) for p in ports))
            return agent, ports, address

        agent, ports, address = e2e.retry_on_port_collision(attempt)
        flags = []
        for f in local_port_flags(ports):
            flags += ["--local-port", f]
        proxy = e2e.Proxy(agent.tunnel_str, [], flags)
        self.addCleanup(proxy.stop)
        return [(address, p) for p in ports]

    def server(self, seed):
        s = e2e.Server(e2e.eof_then_send_handler(RESPONSE, seed))
        self.addCleanup(s.close)
        return s

    def roundtrip(self, addr, server, seed):
        request = os.urandom(1 << 20)
        with e2e.connect(addr) as c:
            c.sendall(request)
            c.shutdown(socket.SHUT_WR)
            got = e2e.recv_stream(c)
        self.assertEqual(got, (RESPONSE, e2e.expected_digest(seed, RESPONSE)))
        server.wait_for(lambda s: s.results, what="request at the local server")
        self.assertEqual(server.results.pop(), ("received", len(request),
                                                hashlib.sha256(request).hexdigest()))

    def test_local_remote_pair(self):
        local = self.server(21)
        (remote,) = self.start(1, lambda ports: [f"{local.addr[1]}:{ports[0]}"])
        for _ in range(3):
            self.roundtrip(remote, local, 21)
        self.assertEqual(local.accepted, 3)

    def test_two_served_ports_to_two_local_servers(self):
        a, b = self.server(31), self.server(32)
        pa, pb = self.start(2, lambda ports: [f"{a.addr[1]}:{ports[0]}",
                                              f"{b.addr[1]}:{ports[1]}"])
        self.roundtrip(pa, a, 31)
        self.roundtrip(pb, b, 32)
        self.assertEqual((a.accepted, b.accepted), (1, 1))

    def test_bare_local_port_takes_every_inbound_stream(self):
        local = self.server(41)
        pa, pb = self.start(2, lambda ports: [str(local.addr[1])])
        self.roundtrip(pa, local, 41)
        self.roundtrip(pb, local, 41)
        self.assertEqual(local.accepted, 2)

    def test_local_server_down_closes_inbound_client(self):
        hole = socket.socket()
        hole.bind(("127.0.0.1", 0))  # bound, not listening: refused
        self.addCleanup(hole.close)
        good = self.server(51)
        pa, pb = self.start(2, lambda ports: [f"{hole.getsockname()[1]}:{ports[0]}",
                                              f"{good.addr[1]}:{ports[1]}"])
        secs, data = e2e.open_until_closed(pa)
        self.assertEqual(data, b"")
        self.assertLess(secs, 2 * e2e.SLACK)
        self.roundtrip(pb, good, 51)


if __name__ == "__main__":
    e2e.main()
